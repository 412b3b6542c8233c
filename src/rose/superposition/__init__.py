"""Direction 3b: a loss that discourages superposition.

- :mod:`.toy_model`   Toy Models of Superposition (Elhage et al. 2022), many instances at once
- :mod:`.geometry`    feature norms, superposition, dimensionality D_i, features per dimension,
                      neuron polysemanticity, per-unit mutual information with concepts
- :mod:`.penalties`   activation penalties: the switching penalties (bimodal_split,
                      bimodal_standardised), the saturation one (bimodal_sigmoid), nearest-level,
                      L1; the hidden activations (ReLU, SoLU, top-k) are rose.nn.activations
- :mod:`.monosemanticity` metrics that cannot be fooled: features represented by reconstruction
                      gain, alive units, polysemanticity over alive units, bimodality, the
                      frontier area
- :mod:`.frontier`    the Pareto view of the toy penalty study (per-seed frontier areas)
- :mod:`.phase_diagram` the 2-features-in-1-dimension phase diagram
- :mod:`.shortcut`    the penalties on an MLP trained on Colored MNIST (spurious colour)
- :mod:`.experiments` the config-driven runs the workflow calls
"""
