"""The engine: what a video model is (`shapes`, `graphs`), the one compiled pass that gives
every frame's gradients at once (`unroll`, `guided`, `backend`), what is explained
(`targets`), the checks on clips (`clips`), the maps' common steps (`maps`), the contract
between the engine and the methods (`registry`) and the `Explainer` that runs them
(`explainer`). The engine imports nothing from the rest of tdexplain."""
