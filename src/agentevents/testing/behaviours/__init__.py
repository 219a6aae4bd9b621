"""The specification's topics, one module per step module of features/steps (``steps/tools.py``
-> ``behaviours/tools.py``): what the scripted agent does, in the words of the feature files (each
module registers its phrases with ``testing.scripts`` when imported), the values the checks
compare with, and the checks themselves. A step is glue that calls one function here."""
