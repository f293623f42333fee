"""What a finished (or, when asked, partial) cube shows: opening it, thresholds, tables, figures, the gallery."""
