"""``fashionkit serve``: the web service (REST API, OpenAPI at ``/openapi.json``; Swagger UI at
``/docs`` with ``--api-docs``)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
        db: str | None = typer.Option(
            None,
            "--db",
            help="SQLAlchemy URL of the wardrobe (default: SQLite in the user data dir).",
        ),
        weights: Path | None = typer.Option(
            None,
            "--weights",
            exists=True,
            dir_okay=False,
            help="Checkpoint for photo detection (without it, photo uploads answer 503).",
        ),
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            file_okay=False,
            help="Pending uploads, detection jobs and the token secret (default: user data "
            "dir). Photos and cut-outs go beside the database, where the CLI finds them.",
        ),
        device: str = typer.Option("cpu", "--device", help="Where detection runs: cpu, cuda …"),
        min_score: float = typer.Option(
            0.5, "--min-score", min=0.0, max=1.0, help="Detections below it are not added."
        ),
        max_upload_mb: float = typer.Option(
            20.0, "--max-upload-mb", min=0.01, help="Largest photo upload, MiB."
        ),
        max_megapixels: float = typer.Option(
            40.0, "--max-megapixels", min=0.01, help="Largest photo, megapixels."
        ),
        api_docs: bool = typer.Option(
            False,
            "--api-docs",
            help="Serve Swagger UI at /docs (its page loads scripts from a CDN).",
        ),
        max_concurrency: int = typer.Option(
            200,
            "--max-concurrency",
            min=1,
            help="Connections and requests at once; more answer 503 at once.",
        ),
        header_timeout: float = typer.Option(
            10.0,
            "--header-timeout",
            min=0.1,
            help="Seconds a client has to send a request's line and headers (408 after).",
        ),
        workers: int = typer.Option(
            1,
            "--workers",
            min=1,
            help="Processes serving the one address, sharing photo jobs and logins through "
            "the database (each loads its own model; --max-concurrency is per process).",
        ),
    ) -> None:
        """Serve the wardrobe over HTTP for several people (each logs in and sees only their
        own items, photos and outfits)."""
        import platformdirs

        from fashionkit.service.server import ServiceOptions, run, server_config
        from fashionkit.wardrobe import default_url
        from fashionkit.wardrobe.database import WardrobeDatabase

        options = ServiceOptions(
            db_url=db or default_url(),
            data_dir=str(data_dir or platformdirs.user_data_path("fashionkit") / "service"),
            weights=None if weights is None else str(weights),
            device=device,
            settings={
                "max_upload_bytes": int(max_upload_mb * 1024 * 1024),
                "max_pixels": int(max_megapixels * 1_000_000),
                "min_score": min_score,
            },
            api_docs=api_docs,
        )
        if workers > 1:
            # Once, here: a database that cannot be opened is told once, before any worker.
            WardrobeDatabase(options.db_url).close()
        config = server_config(
            # One process: the application is built here, where a bad checkpoint is reported
            # as the other commands report it.
            options if workers > 1 else options.create_app(),
            host,
            port,
            header_timeout_s=header_timeout,
            max_concurrency=max_concurrency,
            workers=workers,
        )
        run(config)
