"""The continuous magnetic film: a texture field and a temperature field on a 2-D mesh whose
contact conductances emerge as the Dirichlet-to-Neumann map of the mesh (issue 11).
(Named ``thinfilm``: ``sim_backend.film`` is already the film topology function.)

mesh      the Q1 finite-element grid and its contact electrodes
dtn       the factorized film: the contacts' conductance matrix and interior potentials
texture   per-cell domain order, the AMR resistivity tensor, drive and relaxation laws
heat      the implicit heat equation (Joule source, diffusion, loss to the substrate)
disorder  correlated random fields and stuck regions
array     FilmArray: the film behind the pair-device interface of a simulated bench
"""
from .array import FilmArray, film_mesh
from .mesh import Contact, FilmMesh, perimeter_contacts

__all__ = ["Contact", "FilmArray", "FilmMesh", "film_mesh", "perimeter_contacts"]
