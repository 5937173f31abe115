"""The LSH core: hashing and its theory, LSH attention and its kernels, oracles, costs.

The LSH core: SimHash hashing (:mod:`~lshlib.lsh.hashing`) and its closed forms
(:mod:`~lshlib.lsh.theory`), one mask convention (:mod:`~lshlib.lsh.masks`), BERT-LSH attention in
transformers (:mod:`~lshlib.lsh.attention`, its settings :mod:`~lshlib.lsh.config` and hash draws
:mod:`~lshlib.lsh.draws`) with its kernels (:mod:`~lshlib.lsh.bucketed` and its
:mod:`~lshlib.lsh.layout`, :mod:`~lshlib.lsh.flex`), the slow oracles they are tested against
(:mod:`~lshlib.lsh.reference`) and exact operation counts (:mod:`~lshlib.lsh.cost`). Imports
only torch, numpy and :mod:`lshlib.scales`."""
