"""fashionkit: fashion item detection on the Fashionpedia ontology, a personal wardrobe, outfits.

The library is the product; ``fashionkit.cli`` and ``fashionkit.service`` are thin layers on it.
"""

from fashionkit.ontology import Ontology, load_ontology

__all__ = ["Ontology", "load_ontology", "__version__"]
__version__ = "0.1.0"
