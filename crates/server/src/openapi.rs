//! `/openapi.json`: the OpenAPI 3.1 description of the HTTP surface, written by hand next to
//! this file (`openapi.json`) and served as is. A test keeps it in step with the routes.

/// The document served at `/openapi.json`.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::*;

    /// The document is valid JSON and describes every route the router serves.
    #[test]
    fn describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/models",
            "/v1/models/{id}",
            "/health",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
        }
    }
}
