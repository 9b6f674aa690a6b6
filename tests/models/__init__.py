"""Tests of recnb.models."""
