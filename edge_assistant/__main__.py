"""python -m edge_assistant"""

from .cli import main

main()
