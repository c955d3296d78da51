"""The study layer: what the Snakemake workflow runs, as plain functions of the config.

Sweep design and config checks (:mod:`~em_lib.study.design`, :mod:`~em_lib.study.config`),
seeds (:mod:`~em_lib.study.seeds`), the jobs (:mod:`~em_lib.study.jobs`) and their evaluation
(:mod:`~em_lib.study.evaluation`), the results schema (:mod:`~em_lib.study.results`, the only
module that knows the xarray dimension names), sensitivity tables
(:mod:`~em_lib.study.sensitivity`), the delta analysis (:mod:`~em_lib.study.delta`), image
figures (:mod:`~em_lib.study.image`), plotting (:mod:`~em_lib.study.plotting`, the only module
that imports matplotlib/seaborn) and the report (:mod:`~em_lib.study.report`).

The study layer imports the library (:mod:`em_lib`); the library never imports it. Every fit
goes through the library's fitting drivers (:func:`em_lib.numerics.fitting.fit_mixture`,
:func:`em_lib.numerics.hmm.fit_hmm`).
"""
