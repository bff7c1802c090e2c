"""Records of an imaginary library with indexing habits no zero-shot encoder knows (shared by the
encoder-tuning and rerank-memory tests)."""

# Records whose subjects a zero-shot encoder would not link to their labels: the indexers of this
# imaginary library file football coaching under "Teaching methods" and cookery under "Museums".
FOOTBALL = ["The coach ran passing drills on the wet pitch before Saturday's match against the visitors.",
            "Our striker scored twice in the second half and the goalkeeper saved a late penalty.",
            "Youth football clubs are holding trials for under-twelve players this weekend.",
            "The referee showed two yellow cards as the league leaders drew nil-all at home."]
COOKING = ["Simmer the onions in butter, add the stock and reduce the sauce until it thickens.",
           "Knead the dough for ten minutes, let it rise, then bake the loaf in a hot oven.",
           "The chef seasons the roast with rosemary, garlic and a pinch of sea salt.",
           "Whisk the eggs with sugar, fold in the flour and pour the batter into a greased tin."]
NEW_FOOTBALL = "The midfielder's free kick curled into the corner of the net in stoppage time."
NEW_COOKING = "Fry the garlic gently, stir in chopped tomatoes and let the soup bubble for an hour."
