"""Masked-Mel datasets: file sources (LJSpeech, CAL500, folders), masks and crops."""
