"""Delta-adjusted multiple imputation and its tipping point on one data set and mask
(em_lib.study.delta)."""

from em_lib.study.script import run


def main(smk, log):
    import numpy as np

    from em_lib.study import delta, jobs, report, results

    target = smk.params.target
    X = jobs.load_arrays(smk.input.data)["X"].astype(float)
    X[jobs.load_arrays(smk.input.mask)["mask"]] = np.nan
    ds = results.open_results(smk.input.results)
    tables = delta.delta_analysis(
        X, ds, target, smk.params.settings, smk.params.fit, smk.params.root_seed
    )
    label = "delta adjustment on {dataset} {mechanism} rate {missing_rate} rep {replicate}"
    for frame, csv, tex in zip(tables, smk.output.csv, smk.output.tex, strict=True):
        for position, key in enumerate(("dataset", "mechanism", "missing_rate", "replicate")):
            frame.insert(position, key, target[key])
        report.write_table(frame, csv, tex, comment=label.format(**target))
    log.info("tipping points with their intervals:\n%s", tables[1].to_string())


run(snakemake, main, compile_first=True)  # noqa: F821
