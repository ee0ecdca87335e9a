"""``fashionkit ontology``: print the categories (and attributes) with their ids."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def ontology(
        attributes: bool = typer.Option(False, "--attributes", help="List the 294 attributes."),
    ) -> None:
        """Print the Fashionpedia categories (ids, super categories) or attributes."""
        from rich.console import Console
        from rich.table import Table

        from fashionkit.ontology import load_ontology

        ont = load_ontology()
        if attributes:
            table = Table("id", "name", "group", title=f"{ont.num_attributes} attributes")
            for a in ont.attributes:
                table.add_row(str(a.id), a.name, a.supercategory)
        else:
            table = Table("id", "name", "super category", "group", title="46 categories")
            for c in ont.categories:
                table.add_row(str(c.id), c.name, c.supercategory, c.group)
        Console().print(table)
