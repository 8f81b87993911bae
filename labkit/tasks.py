"""The two tasks labkit knows, by the names ModelArts gives them (a model's ``model_algorithm``).
Every stage keys on these: a dataset's record, an algorithm card, a job's model.json, a
conversion's parity rule, a model's serving.json and config.json, the service's answer."""

CLASSIFICATION = "image_classification"
COUNTING = "crowd_counting"
TASKS = (CLASSIFICATION, COUNTING)
# The validation metric a job is judged by (higher accuracy, lower MAE is better).
HEADLINE = {CLASSIFICATION: "accuracy", COUNTING: "mae"}
# The generator a stage notebook makes data with for a task when there is none yet.
SAMPLE_DATA = {CLASSIFICATION: "flowers", COUNTING: "crowd"}
