"""Stage 5's evaluation: ``result.json`` from per-image result files and a label file, as seed
003's classification_task_metric.py writes it; MAE and RMSE for counting.

    from labkit import eval as evaluation
    evaluation.write_label_file("flowers@V001", "val_label.txt")
    evaluation.classification("result/", "val_label.txt", out="result.json")["top1"]
"""
from labkit.eval.metrics import against_dataset, classification, counting, read_labels, write_label_file

__all__ = ["against_dataset", "classification", "counting", "read_labels", "write_label_file"]
