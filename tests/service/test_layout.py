"""One data layout: the CLI and the service open the same wardrobes, photos and cut-outs.

A wardrobe made with the CLI is not handed to whoever registers its name first; whoever can
open the database gives it a web login with ``fashionkit wardrobe password``."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fashionkit.cli import app as cli
from fashionkit.service import create_app
from fashionkit.wardrobe import Wardrobe, default_image_dir
from fashionkit.wardrobe.ingest import ingest_photos

from .conftest import login
from .fakes import TruthPredictor


def _cli(*args, input=None, password=None):
    # ``password``: the web account's, which the CLI asks for before opening its wardrobe.
    env = {"FASHIONKIT_PASSWORD": password} if password is not None else {}
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)
    return result


def _token(client, name, password):
    response = client.post("/api/token", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_cli_wardrobe_gets_a_web_login_and_shows_its_pictures(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    predictor = TruthPredictor()
    photo = tmp_path / "photo.png"
    photo.write_bytes(predictor.photo(0))
    with Wardrobe(url, user="carol") as wardrobe:  # as `fashionkit wardrobe add` opens it
        added = ingest_photos(wardrobe, predictor, [photo]).added
    assert added and (tmp_path / "w-images").is_dir()

    with TestClient(create_app(url, tmp_path / "data")) as client:
        response = client.post("/api/users", json={"name": "carol", "password": "long enough"})
        assert response.status_code == 409
        assert "fashionkit wardrobe password --user carol" in response.json()["detail"]

        result = _cli(
            "wardrobe",
            "password",
            "--db",
            url,
            "--user",
            "carol",
            input="long enough\nlong enough\n",
        )
        assert result.exit_code == 0, result.output
        carol = _token(client, "carol", "long enough")
        items = client.get("/api/items", headers=carol).json()
        assert sorted(i["id"] for i in items) == sorted(added)
        cutout = client.get(f"/api/items/{added[0]}/cutout", headers=carol)
        assert cutout.status_code == 200 and cutout.content.startswith(b"\x89PNG")

        # A second run changes the password; the old one stops working.
        result = _cli(
            "wardrobe", "password", "--db", url, "--user", "carol", "--password-stdin",
            input="another password\n", password="long enough",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (
            client.post(
                "/api/token", data={"username": "carol", "password": "long enough"}
            ).status_code
            == 401
        )
        _token(client, "carol", "another password")
        # A name with a login is still refused, with the plain message.
        again = client.post("/api/users", json={"name": "carol", "password": "long enough"})
        assert again.status_code == 409 and "command line" not in again.json()["detail"]


def test_service_photos_are_where_the_cli_looks(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    predictor = TruthPredictor()
    data = predictor.photo(1)
    with TestClient(create_app(url, tmp_path / "data", predictor=predictor)) as client:
        alice = login(client, "alice")
        job = client.post(
            "/api/photos", files={"file": ("p.png", data, "image/png")}, headers=alice
        ).json()
        deadline = time.monotonic() + 30
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(job["url"], headers=alice).json()
        assert job["status"] == "done" and job["items"], job

    assert not (tmp_path / "data" / "images").exists()
    with Wardrobe(url, user="alice") as wardrobe:  # the CLI's defaults
        assert wardrobe.images.root == default_image_dir(url) == tmp_path / "w-images"
        for key in job["items"]:
            assert wardrobe.cutout_path(key).exists()
            assert wardrobe.photo_of(key).read_bytes() == data
    listed = _cli(
        "wardrobe", "list", "--db", url, "--user", "alice", "--json", password="correct horse"
    )
    assert listed.exit_code == 0 and len(listed.stdout) > 2
    out = tmp_path / "dataset"
    exported = _cli(
        "wardrobe", "export-dataset", out, "--db", url, "--user", "alice",
        password="correct horse",
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert len(list((out / "images").iterdir())) == 1


def test_password_command_refuses_bad_input(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    short = _cli("wardrobe", "password", "--db", url, "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "8 to 1024" in short.output
    bad_name = _cli(
        "wardrobe", "password", "--db", url, "--user", "../x", "--password-stdin",
        input="long enough\n",
    )  # fmt: skip
    assert bad_name.exit_code == 2 and "--user" in bad_name.output
