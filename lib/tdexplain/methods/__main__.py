"""`python -m tdexplain.methods` prints the README's table of methods."""

from . import markdown_table

print(markdown_table())
