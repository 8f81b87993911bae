"""The two tasks labkit knows, by the names ModelArts gives them (a model's ``model_algorithm``).
Every stage keys on these: a dataset's record, an algorithm card, a job's model.json, a
conversion's parity rule, a model's serving.json and config.json, the service's answer."""

CLASSIFICATION = "image_classification"
COUNTING = "crowd_counting"
TASKS = (CLASSIFICATION, COUNTING)
