"""Simulate or load one data set (em_lib.study.jobs.prepare_dataset) into an .npz file."""

from em_lib.study.script import run


def main(smk, log):
    from em_lib.study import jobs

    name = smk.wildcards.dataset
    arrays = jobs.prepare_dataset(name, smk.params.spec, smk.params.root_seed)
    jobs.save_arrays(smk.output[0], arrays)
    log.info(
        "%s: X %s, own missing entries %d",
        name,
        arrays["X"].shape,
        int((arrays["X"] != arrays["X"]).sum()),
    )


run(snakemake, main)  # noqa: F821
