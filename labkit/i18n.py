"""The lessons' languages, and the words labkit's figures and notebook forms are labelled with.

A lesson sets its language once (``i18n.use(LANGUAGE)`` in its first code cell); ``word(key)``
then answers in it. CLI messages and errors stay English in every language (README: the
language of the kit), so they read the same in a bug report, a search and the docs.
"""
from __future__ import annotations

import os

LANGUAGES = ("en", "zh-CN")

# key: (English, Simplified Chinese). Fields in braces are filled in by ``word``.
WORDS = {
    "accuracy": ("accuracy", "准确率"),
    "best throughput": ("best throughput (images/s)", "最高吞吐量（张/秒）"),
    "count": ("count: {count:.1f}", "人数：{count:.1f}"),
    "count of": ("{predicted:.1f} (true {true:.1f})", "{predicted:.1f}（真实 {true:.1f}）"),
    "dataset form": ("Dataset: change a value, then run the next cell",
                     "数据集：修改取值后运行下一个单元格"),
    "dataset name": ("dataset name", "数据集名称"),
    "dataset title": ("{name}: images per class", "{name}：每类图像数"),
    "density map": ("density map over the image", "叠加在图像上的密度图"),
    "density sum": ("density sum {value:.1f}", "密度和 {value:.1f}"),
    "end to end": ("end to end", "端到端"),
    "epoch": ("epoch", "轮次"),
    "file size": ("file size (MB)", "文件大小（MB）"),
    "generator": ("generator", "生成器"),
    "heads": ("heads", "人数"),
    "heads in image": ("{count} heads", "{count} 人"),
    "heads per image": ("heads per image", "每张图像的人数"),
    "image": ("image", "图像"),
    "images": ("images", "图像数"),
    "images per class": ("images per class", "每类图像数"),
    "label of": ("{predicted}\n(true: {true})", "{predicted}\n（真实：{true}）"),
    "latency": ("batch-1 latency (ms)", "批大小 1 的延迟（毫秒）"),
    "mae title": ("MAE {mae:.1f} (mean baseline {baseline:.1f})", "MAE {mae:.1f}（均值基线 {baseline:.1f}）"),
    "mean": ("mean", "均值"),
    "milliseconds per image": ("milliseconds per image", "每张图像的毫秒数"),
    "or upload": ("or upload", "或上传"),
    "perfect": ("perfect", "完全准确"),
    "pipeline title": ("pipeline {stream}: {images} images", "流水线 {stream}：{images} 张图像"),
    "predict": ("Predict", "预测"),
    "predict the mean": ("predict the mean", "预测均值"),
    "predicted": ("predicted", "预测"),
    "predicted count": ("predicted count", "预测人数"),
    "predicted label": ("predicted: {label}", "预测：{label}"),
    "probability": ("probability", "概率"),
    "scenes title": ("{name}: {scenes} scenes, {heads} heads", "{name}：{scenes} 个场景，共 {heads} 人"),
    "seed": ("seed", "随机种子"),
    "service": ("service {name}", "服务 {name}"),
    "size": ("size (px)", "尺寸（像素）"),
    "split title": ("{name}: train / val", "{name}：训练 / 验证"),
    "through": ("{image} via {url}", "{image}，经 {url}"),
    "train": ("train", "训练"),
    "train ratio": ("train ratio", "训练集比例"),
    "training loss": ("training loss", "训练损失"),
    "true": ("true", "真实"),
    "true count": ("true count", "真实人数"),
    "val": ("val", "验证"),
    "val MAE": ("val MAE", "验证 MAE"),
    "val RMSE": ("val RMSE", "验证 RMSE"),
    "validation": ("validation", "验证"),
    "validation accuracy": ("validation accuracy", "验证准确率"),
    "validation accuracy of": ("validation accuracy {value:.1%}", "验证准确率 {value:.1%}"),
    "validation MAE": ("validation MAE", "验证 MAE"),
    # the room's page (labkit.room.page)
    "room": ("labkit: the room", "labkit：教室"),
    "room summary": ("{learners} learners; running now: {running}; on disk: {disk}; refreshed {time}",
                     "{learners} 名学员；正在运行：{running} 项；磁盘占用：{disk}；刷新于 {time}"),
    "learner": ("learner", "学员"),
    "lesson": ("lesson", "课程"),
    "stage": ("stage", "阶段"),
    "jobs": ("training jobs", "训练作业"),
    "conversions": ("conversions", "模型转换"),
    "services": ("services", "在线服务"),
    "disk": ("disk", "磁盘"),
    "last error": ("last error", "最近的错误"),
    "last change": ("last change", "最近的改动"),
    "minutes ago": ("{minutes} min ago", "{minutes} 分钟前"),
    "stage data": ("1 data", "1 数据"),
    "stage train": ("2 train", "2 训练"),
    "stage convert": ("3 convert", "3 转换"),
    "stage model": ("4 model", "4 模型"),
    "stage service": ("5 deploy", "5 部署"),
    "not started": ("not started", "尚未开始"),
    "give pack": ("hand a pack to a learner: labkit room give LEARNER PACK", "给学员一个讲师包：labkit room give 学员 讲师包"),
}

# A lesson's processes (a training job drawing its TensorBoard figures) speak its language:
# train.create passes it on in LABKIT_LANG.
LANGUAGE_ENV = "LABKIT_LANG"
_language = os.environ.get(LANGUAGE_ENV) if os.environ.get(LANGUAGE_ENV) in LANGUAGES else LANGUAGES[0]


def use(language: str | None) -> str:
    """Label figures and forms in ``language`` from now on (None: English). Returns it. Sets up
    matplotlib's fonts too, so that a learner's own figure draws Chinese from the lesson's first
    cell, not only once labkit has drawn one."""
    from labkit.plots import setup_fonts

    global _language
    language = language or LANGUAGES[0]
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: choose one of {', '.join(LANGUAGES)}")
    _language = language
    setup_fonts()
    return language


def language() -> str:
    """The language figures and forms are labelled in now."""
    return _language


def word(key: str, language: str | None = None, **fields) -> str:
    """The words for ``key`` in ``language`` (default: the current one), with ``fields`` filled in."""
    return WORDS[key][LANGUAGES.index(language or _language)].format(**fields)
