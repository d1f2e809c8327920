"""Readers for MMSegmentation, Detectron2 and smp configs, lint rules and fixes. No torch, never runs config code."""
