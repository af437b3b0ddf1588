"""What the demo library holds: its libraries (a code table) and the titles on its shelves, which loans,
requests and fees name."""
from __future__ import annotations

import numpy as np

LIBRARIES = {"MAIN": "Main library", "SCI": "Science library", "LAW": "Law library", "MUSIC": "Music library"}
LIBRARY = np.array(list(LIBRARIES), dtype=object)
LIBRARY_SHARE = (0.55, 0.20, 0.15, 0.10)

TITLES = (
    "Bananboken", "Knowledge concepts", "Introduction to Algorithms", "The Structure of Scientific Revolutions",
    "Pride and Prejudice", "Sult", "Cien años de soledad", "Le Petit Prince", "Die Verwandlung",
    "Principles of Neural Science", "Gray's Anatomy", "Constitutional Law: Cases and Materials",
    "The Well-Tempered Clavier (score)", "Organic Chemistry", "Thinking, Fast and Slow", "A Brief History of Time",
    "Kristin Lavransdatter", "Brød og vin", "Ædle metaller i Norden", "Økonomisk historie", "Crime and Punishment",
    "Things Fall Apart", "Beloved", "The Hobbit", "Calculus: Early Transcendentals", "Statistical Rethinking",
    "Designing Data-Intensive Applications", "The Art of Computer Programming, Vol. 1", "Moby-Dick",
    "Il nome della rosa", "Norwegian Wood", "Americanah", "The Second Sex", "Das Kapital", "Zur Farbenlehre",
    "Medieval Manuscripts of Bergen", "Climate Change 2021: The Physical Science Basis", "Pedagogy of the Oppressed",
)
TITLE = np.array(TITLES, dtype=object)
