"""Impose one missingness mask on top of a data set's own missing values
(em_lib.study.jobs.make_mask)."""

from em_lib.study.script import run


def main(smk, log):
    from em_lib.study import design, jobs

    job = design.MaskJob.from_wildcards(smk.wildcards)
    X = jobs.load_arrays(smk.input.data)["X"]
    arrays = jobs.make_mask(X, job, root_seed=smk.params.root_seed, strength=smk.params.strength)
    jobs.save_arrays(smk.output[0], arrays)
    log.info(
        "%s: masked %.4f, missing in all %.4f",
        job,
        arrays["realised_rate"],
        arrays["total_missing_rate"],
    )


run(snakemake, main)  # noqa: F821
