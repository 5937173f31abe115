"""The numbers the paper reports: Li & Yip, "BERT-LSH: Reducing Absolute Compute For
Attention", arXiv:2404.08836 (2024), results tables as transcribed in docs/paper.md ("Reported
numbers"). The paper reports no SQuAD EM or F1. Reports and the README set these beside ours;
nothing computes them.
"""

RESULTS: dict[str, dict[str, float]] = {
    "baseline": {
        "mlm_eval_accuracy": 0.1505,
        "mlm_eval_loss": 5.495,
        "mlm_perplexity": 243.6,
        "mlm_final_train_loss": 5.516,
        "mlm_runtime_s": 1285.0,
        "mlm_train_samples_per_s": 549.3,
        "mlm_eval_samples_per_s": 874.3,
        "sst2_test_accuracy": 0.7672,
        "sst2_test_loss": 0.5009,
        "sst2_best_validation_loss": 0.3748,
        "sst2_test_samples_per_s": 1691.9,
        "squad_best_validation_loss": 0.5161,
        "squad_test_samples_per_s": 3347.2,
    },
    "lsh": {
        "mlm_eval_accuracy": 0.1819,
        "mlm_eval_loss": 5.331,
        "mlm_perplexity": 206.6,
        "mlm_final_train_loss": 5.406,
        "mlm_runtime_s": 4178.0,
        "mlm_train_samples_per_s": 168.9,
        "mlm_eval_samples_per_s": 265.8,
        "sst2_test_accuracy": 0.7603,
        "sst2_test_loss": 0.4948,
        "sst2_best_validation_loss": 0.4306,
        "sst2_test_samples_per_s": 312.4,
        "squad_best_validation_loss": 0.5311,
        "squad_test_samples_per_s": 356.5,
    },
}
CITATION = "Li & Yip, BERT-LSH, arXiv:2404.08836 (2024); tables transcribed in docs/paper.md"
