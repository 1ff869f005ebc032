"""radiusgw: a RADIUS/L2TP authentication-outsourcing gateway.

The package is a sans-I/O core (``radius``, ``config``, ``router``, ``modes``, ``store``)
with one asyncio edge (``server``). See docs/architecture.md for the map.
"""

from radiusgw.errors import RadiusGwError

__all__ = ["RadiusGwError", "__version__"]
__version__ = "0.1.0"
