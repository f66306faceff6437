"""Model-card templates, shipped inside the package so a release works from any directory."""
