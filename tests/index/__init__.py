"""Tests of the index domain (a package, so module names never collide with other domains)."""
