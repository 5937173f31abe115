"""Experiments on attention, and the pre-registered plateau study.

Experiments: how LSH attention behaves on real inputs (:mod:`~lshlib.experiments.analysis`,
:mod:`~lshlib.experiments.locality`), baselines (:mod:`~lshlib.experiments.baselines`), the
statistics of claims (:mod:`~lshlib.experiments.stats`), and the pre-registered plateau study:
its rule and survival statistics (:mod:`~lshlib.experiments.survival`), its runs
(:mod:`~lshlib.experiments.plateau`), the mechanism arms (:mod:`~lshlib.experiments.mechanisms`)
and the reading of its records (:mod:`~lshlib.experiments.exits`)."""
