"""Cross-lingual transfer experiments with composable sparse fine-tunings (experiment code)."""
