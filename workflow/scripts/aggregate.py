"""Assemble every fit job's arrays into one labelled netCDF file (em_lib.study.results)."""

from pathlib import Path

from em_lib.study.script import run


def main(smk, log):
    from em_lib.study import design, jobs, results, seeds

    config = smk.params.config
    masks = design.mask_jobs(config)
    names = design.dataset_names(config)
    data = {name: jobs.load_arrays(path) for name, path in zip(names, smk.input.data, strict=True)}
    labels = [job.labels for job in masks]
    ds = results.build_dataset(
        design.coordinates(config),
        data,
        zip(labels, map(jobs.load_arrays, smk.input.fits), strict=True),
        zip(labels, map(jobs.load_arrays, smk.input.masks), strict=True),
        attrs=results.provenance(
            config, commit=results.git_commit(Path(__file__).parent), seed_scheme=seeds.SEED_SCHEME
        ),
    )
    results.write_netcdf(ds, smk.output[0])
    log.info("wrote %s: %s", smk.output[0], dict(ds.sizes))


run(snakemake, main)  # noqa: F821
