"""Tests of recnb.evaluation."""
