//! Canary analysis: a deployment's analyses, retrospective analysis, and the metric providers
//! analyses query.
