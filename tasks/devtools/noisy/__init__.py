"""A realistic noisy library with the truth kept: duplicates of many kinds and look-alikes."""
