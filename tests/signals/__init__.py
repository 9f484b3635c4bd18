"""Tests of the signals domain (src/redress/signals/)."""
