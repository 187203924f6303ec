"""`python -m tdexplain.metrics` prints the README's table of metrics."""

from .catalogue import markdown_table

print(markdown_table())
