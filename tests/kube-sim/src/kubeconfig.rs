//! The kubeconfig the simulator writes: one cluster (the simulator's URL, plus the CA when
//! serving HTTPS), one user with the bearer token, one current context.

use base64::Engine;

/// Renders a kubeconfig for `server` with the CA (PEM) when serving HTTPS.
pub(crate) fn render(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let ca_line = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    format!(
        "# Written by kube-sim, a Kubernetes API simulator (not a cluster).\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: kube-sim\n  \
           cluster:\n    \
             server: {server}\n\
         {ca_line}\
         users:\n\
         - name: kube-sim\n  \
           user:\n    \
             token: {token}\n\
         contexts:\n\
         - name: kube-sim\n  \
           context:\n    \
             cluster: kube-sim\n    \
             user: kube-sim\n    \
             namespace: default\n\
         current-context: kube-sim\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses_with_kube_rs() {
        let text = render(
            "https://127.0.0.1:6443",
            Some("-----BEGIN CERTIFICATE-----\n"),
            "t0k",
        );
        let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("kube-sim"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert!(cluster.certificate_authority_data.is_some());
        let plain = render("http://127.0.0.1:1", None, "t");
        assert!(!plain.contains("certificate-authority-data"));
    }
}
