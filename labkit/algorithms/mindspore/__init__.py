"""MindSpore engine. Import it only where MindSpore is needed: it imports mindspore."""
