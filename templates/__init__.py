"""The Jinja2 templates of netgen's scripts; a package only so that they install inside the wheel."""
