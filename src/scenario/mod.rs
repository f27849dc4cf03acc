//! Scenario files: YAML with locations, the object model and located errors.
