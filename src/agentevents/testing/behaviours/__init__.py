"""What the scripted agent does, in the words of the feature files: each module registers its
phrases with ``testing.scripts`` when imported, and holds the values the checks compare with."""
