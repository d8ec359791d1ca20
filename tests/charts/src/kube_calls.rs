//! The Kubernetes API calls a crate makes with kube-rs, found in its source with `syn`: every
//! method call of kube's `Api` (`get_opt`, `list`, `create`, `patch`, `delete`, …) whose
//! receiver can be traced to an `Api<T>` — a local binding with a type, a helper function
//! returning one, a tuple element of such a helper — together with the verb it needs.
//!
//! Three kinds of receiver: a typed `Api<ReplicaSet>` (the resource is the type's), an
//! `Api<DynamicObject>` built by a helper from a fixed table of kinds (a `match` whose arms are
//! `(group, version, plural)` literals: those kinds), and an `Api<DynamicObject>` found by
//! discovery from an object's `apiVersion` and `kind` (the kinds come from the data; the caller
//! of this module says which reach those sites). A call this module cannot trace is reported, not
//! ignored, so new code cannot slip past the RBAC comparison.

use quote::ToTokens;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use syn::visit::Visit;

/// What a call's receiver is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `Api<T>` of a k8s-openapi type, by the type's name.
    Typed(String),
    /// `Api<DynamicObject>` of one of these `(group, plural)` kinds.
    Kinds(Vec<(String, String)>),
    /// `Api<DynamicObject>` of whatever kind the object at hand names (found by discovery).
    Dynamic,
}

/// One call site.
#[derive(Clone, Debug)]
pub struct Call {
    /// `file.rs::function`.
    pub site: String,
    /// The `Api` method.
    pub method: String,
    /// The RBAC verbs it needs.
    pub verbs: Vec<&'static str>,
    /// What it is called on.
    pub target: Target,
}

/// What was found in a crate.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Every traced call.
    pub calls: Vec<Call>,
    /// Sites that use `kube::discovery` (GETs of `/api`, `/apis/…`).
    pub discovery: BTreeSet<String>,
    /// Function (`file.rs::name`) to the sites calling it.
    pub callers: BTreeMap<String, BTreeSet<String>>,
    /// Calls that look like Kubernetes calls but could not be traced, with why.
    pub untraced: Vec<String>,
}

/// The RBAC verbs of an `Api` method; `None` for methods this module does not model.
fn verbs_of(method: &str, server_side_apply: bool) -> Option<Vec<&'static str>> {
    Some(match method {
        "get" | "get_opt" | "get_metadata" | "get_metadata_opt" => vec!["get"],
        "list" | "list_metadata" => vec!["list"],
        "watch" | "watch_metadata" => vec!["watch"],
        "create" => vec!["create"],
        // Server-side apply creates the object when it does not exist, which the API server
        // authorizes as `create`.
        "patch" | "patch_metadata" if server_side_apply => vec!["patch", "create"],
        "patch" | "patch_metadata" => vec!["patch"],
        "replace" => vec!["update"],
        "delete" => vec!["delete"],
        "delete_collection" => vec!["deletecollection"],
        _ => return None,
    })
}

/// Methods that, on an untraceable receiver, are reported rather than taken for another type's
/// (`get` and `replace` are everywhere: maps, strings).
const STRICT: &[&str] = &[
    "get_opt",
    "get_metadata",
    "get_metadata_opt",
    "list",
    "list_metadata",
    "watch",
    "watch_metadata",
    "create",
    "patch",
    "patch_metadata",
    "delete",
    "delete_collection",
    "entry",
    "get_status",
    "patch_status",
    "replace_status",
    "get_scale",
    "patch_scale",
    "replace_scale",
    "get_subresource",
    "patch_subresource",
    "create_subresource",
    "replace_subresource",
];

/// Raw requests through `kube::Client`: their paths are not modelled.
const RAW: &[&str] = &[
    "request",
    "request_text",
    "request_status",
    "request_events",
    "request_stream",
    "apiserver_version",
    "list_api_groups",
    "list_core_api_versions",
    "list_api_group_resources",
    "list_core_api_resources",
];

/// kube::runtime entry points that call the API through an `Api` given to them.
const RUNTIME: &[&str] = &[
    "watcher",
    "metadata_watcher",
    "watch_object",
    "reflector",
    "await_condition",
];

#[derive(Clone, Debug, PartialEq)]
enum Resolved {
    Recv(Target),
    Tuple(Vec<Option<Target>>),
}

struct FnInfo {
    file: String,
    name: String,
    sig: syn::Signature,
    block: syn::Block,
}

/// Analyses every `.rs` file directly under `src` (test modules skipped).
pub fn analyse(src: &Path) -> Analysis {
    let mut fns = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("parsing {file}: {e}"));
        collect_fns(&file, &parsed.items, &mut fns);
    }
    let index: HashMap<(String, String), usize> = fns
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.file.clone(), f.name.clone()), i))
        .collect();
    let crate_ = Crate { fns: &fns, index };
    let mut analysis = Analysis::default();
    for f in &fns {
        let bindings = crate_.bindings(f);
        let mut visitor = Calls {
            crate_: &crate_,
            f,
            bindings: &bindings,
            out: &mut analysis,
        };
        visitor.visit_block(&f.block);
    }
    analysis
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let text = a.to_token_stream().to_string().replace(' ', "");
        text.contains("cfg(test)") || text == "#[test]"
    })
}

fn collect_fns(file: &str, items: &[syn::Item], out: &mut Vec<FnInfo>) {
    for item in items {
        match item {
            syn::Item::Fn(f) if !is_test(&f.attrs) => out.push(FnInfo {
                file: file.into(),
                name: f.sig.ident.to_string(),
                sig: f.sig.clone(),
                block: (*f.block).clone(),
            }),
            syn::Item::Impl(i) if !is_test(&i.attrs) => {
                for item in &i.items {
                    if let syn::ImplItem::Fn(m) = item
                        && !is_test(&m.attrs)
                    {
                        out.push(FnInfo {
                            file: file.into(),
                            name: m.sig.ident.to_string(),
                            sig: m.sig.clone(),
                            block: m.block.clone(),
                        });
                    }
                }
            }
            syn::Item::Mod(m) if !is_test(&m.attrs) => {
                if let Some((_, items)) = &m.content {
                    collect_fns(file, items, out);
                }
            }
            _ => {}
        }
    }
}

/// The last identifier of a type path and its generic arguments.
fn path_last(ty: &syn::Type) -> Option<(&syn::Ident, Vec<&syn::Type>)> {
    let syn::Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let args = match &seg.arguments {
        syn::PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((&seg.ident, args))
}

/// Whether a return type is a tuple (through `Result`/`Option`).
fn is_tuple(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Tuple(_) => true,
        _ => match path_last(ty) {
            Some((ident, args)) if ident == "Result" || ident == "Option" => {
                args.first().is_some_and(|t| is_tuple(t))
            }
            _ => false,
        },
    }
}

/// `T` of an `Api<T>` type (through references).
fn api_arg(ty: &syn::Type) -> Option<String> {
    let ty = match ty {
        syn::Type::Reference(r) => &*r.elem,
        other => other,
    };
    let (ident, args) = path_last(ty)?;
    if ident != "Api" {
        return None;
    }
    let (inner, _) = path_last(args.first()?)?;
    Some(inner.to_string())
}

/// The `Api` shape of a function's return type: `Api<T>`, or a tuple holding some, through
/// `Result`/`Option`.
fn api_shape(ty: &syn::Type) -> Option<Vec<Option<String>>> {
    if let Some(t) = api_arg(ty) {
        return Some(vec![Some(t)]);
    }
    match ty {
        syn::Type::Tuple(t) => {
            let parts: Vec<Option<String>> = t.elems.iter().map(api_arg).collect();
            parts.iter().any(Option::is_some).then_some(parts)
        }
        _ => {
            let (ident, args) = path_last(ty)?;
            if ident == "Result" || ident == "Option" {
                api_shape(args.first()?)
            } else {
                None
            }
        }
    }
}

struct Crate<'a> {
    fns: &'a [FnInfo],
    index: HashMap<(String, String), usize>,
}

impl Crate<'_> {
    /// The function a call path names: `module::f` in module.rs, `f` in the caller's file.
    fn lookup(&self, caller_file: &str, path: &syn::Path) -> Option<&FnInfo> {
        let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let name = segs.last()?.clone();
        let file = match segs.len() {
            0 | 1 => caller_file.to_string(),
            n => match segs[n - 2].as_str() {
                "crate" | "self" | "super" => caller_file.to_string(),
                module => format!("{module}.rs"),
            },
        };
        self.index.get(&(file, name)).map(|&i| &self.fns[i])
    }

    /// The fixed kinds of a helper building `Api<DynamicObject>` from a table: a function it
    /// calls whose body matches onto `(group, version, plural)` literals. The arm whose pattern
    /// is one of `literals` when there is one, else every arm.
    fn table_kinds(&self, helper: &FnInfo, literals: &[String]) -> Option<Vec<(String, String)>> {
        struct CalledFns(Vec<syn::Path>);
        impl<'ast> Visit<'ast> for CalledFns {
            fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
                if let syn::Expr::Path(p) = &*c.func {
                    self.0.push(p.path.clone());
                }
                syn::visit::visit_expr_call(self, c);
            }
        }
        let mut called = CalledFns(Vec::new());
        called.visit_block(&helper.block);
        for path in called.0 {
            let Some(table) = self.lookup(&helper.file, &path) else {
                continue;
            };
            let arms = match_arms(&table.block);
            if arms.is_empty() {
                continue;
            }
            let chosen: Vec<_> = arms
                .iter()
                .filter(|(pattern, _)| pattern.as_ref().is_some_and(|p| literals.contains(p)))
                .collect();
            let pick = if chosen.is_empty() {
                arms.iter().collect()
            } else {
                chosen
            };
            return Some(pick.into_iter().map(|(_, kind)| kind.clone()).collect());
        }
        None
    }

    /// What a call to `f` returns, as far as `Api`s go; `literals` are the call's string
    /// arguments.
    fn returns(&self, f: &FnInfo, literals: &[String]) -> Option<Resolved> {
        let syn::ReturnType::Type(_, ty) = &f.sig.output else {
            return None;
        };
        let shape = api_shape(ty)?;
        let target = |t: &Option<String>| {
            t.as_ref().map(|t| {
                if t == "DynamicObject" {
                    match self.table_kinds(f, literals) {
                        Some(kinds) => Target::Kinds(kinds),
                        None => Target::Dynamic,
                    }
                } else {
                    Target::Typed(t.clone())
                }
            })
        };
        match shape.as_slice() {
            [single] if !is_tuple(ty) => target(single).map(Resolved::Recv),
            parts => Some(Resolved::Tuple(parts.iter().map(target).collect())),
        }
    }

    /// Local bindings of `f` that hold an `Api`: its parameters and its `let`s.
    fn bindings(&self, f: &FnInfo) -> HashMap<String, Option<Target>> {
        let mut out: HashMap<String, Option<Target>> = HashMap::new();
        for input in &f.sig.inputs {
            if let syn::FnArg::Typed(t) = input
                && let syn::Pat::Ident(id) = &*t.pat
                && let Some(arg) = api_arg(&t.ty)
            {
                let target = if arg == "DynamicObject" {
                    None
                } else {
                    Some(Target::Typed(arg))
                };
                out.insert(id.ident.to_string(), target);
            }
        }
        struct Lets(Vec<syn::Local>);
        impl<'ast> Visit<'ast> for Lets {
            fn visit_local(&mut self, l: &'ast syn::Local) {
                self.0.push(l.clone());
                syn::visit::visit_local(self, l);
            }
        }
        let mut lets = Lets(Vec::new());
        lets.visit_block(&f.block);
        // Twice, so a binding made from an earlier one resolves too.
        for _ in 0..2 {
            for local in &lets.0 {
                let init = local.init.as_ref().map(|i| &*i.expr);
                let (pat, annotated) = match &local.pat {
                    syn::Pat::Type(t) => (&*t.pat, api_arg(&t.ty)),
                    other => (other, None),
                };
                match pat {
                    syn::Pat::Ident(id) => {
                        let name = id.ident.to_string();
                        let target = match annotated {
                            Some(t) if t != "DynamicObject" => Some(Target::Typed(t)),
                            _ => match init.and_then(|e| self.resolve(f, e, &out)) {
                                Some(Resolved::Recv(t)) => Some(t),
                                _ => continue,
                            },
                        };
                        merge(&mut out, name, target);
                    }
                    syn::Pat::Tuple(t) => {
                        let Some(Resolved::Tuple(parts)) =
                            init.and_then(|e| self.resolve(f, e, &out))
                        else {
                            continue;
                        };
                        for (elem, part) in t.elems.iter().zip(parts) {
                            if let (syn::Pat::Ident(id), Some(target)) = (elem, part) {
                                merge(&mut out, id.ident.to_string(), Some(target));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// What an expression evaluates to, as far as `Api`s go.
    fn resolve(
        &self,
        f: &FnInfo,
        expr: &syn::Expr,
        bindings: &HashMap<String, Option<Target>>,
    ) -> Option<Resolved> {
        match expr {
            syn::Expr::Await(e) => self.resolve(f, &e.base, bindings),
            syn::Expr::Try(e) => self.resolve(f, &e.expr, bindings),
            syn::Expr::Paren(e) => self.resolve(f, &e.expr, bindings),
            syn::Expr::Reference(e) => self.resolve(f, &e.expr, bindings),
            syn::Expr::MethodCall(m) if m.method == "clone" || m.method == "map_err" => {
                self.resolve(f, &m.receiver, bindings)
            }
            syn::Expr::Path(p) if p.path.segments.len() == 1 => bindings
                .get(&p.path.segments[0].ident.to_string())
                .cloned()
                .flatten()
                .map(Resolved::Recv),
            syn::Expr::Call(c) => {
                let syn::Expr::Path(p) = &*c.func else {
                    return None;
                };
                let segs = &p.path.segments;
                if let Some(api) = segs.iter().find(|s| s.ident == "Api") {
                    // Api::<T>::namespaced(…): the turbofish names T; without one, only an
                    // annotated binding does.
                    if let syn::PathArguments::AngleBracketed(a) = &api.arguments
                        && let Some(syn::GenericArgument::Type(t)) = a.args.first()
                        && let Some((ident, _)) = path_last(t)
                        && ident != "DynamicObject"
                    {
                        return Some(Resolved::Recv(Target::Typed(ident.to_string())));
                    }
                    return None;
                }
                let callee = self.lookup(&f.file, &p.path)?;
                let literals: Vec<String> = c
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => Some(s.value()),
                        _ => None,
                    })
                    .collect();
                self.returns(callee, &literals)
            }
            _ => None,
        }
    }
}

/// Records a binding; one name bound to different `Api`s in one function is ambiguous (None).
fn merge(out: &mut HashMap<String, Option<Target>>, name: String, target: Option<Target>) {
    match out.get(&name) {
        Some(existing) if *existing != target => {
            out.insert(name, None);
        }
        _ => {
            out.insert(name, target);
        }
    }
}

/// The arms of `match`es in `block` that yield `(group, version, plural)` string literals: the
/// arm's literal pattern (`None` for `_`) and `(group, plural)`.
fn match_arms(block: &syn::Block) -> Vec<(Option<String>, (String, String))> {
    struct Arms(Vec<(Option<String>, (String, String))>);
    impl<'ast> Visit<'ast> for Arms {
        fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
            for arm in &m.arms {
                let syn::Expr::Tuple(t) = &*arm.body else {
                    continue;
                };
                let lits: Vec<String> = t
                    .elems
                    .iter()
                    .filter_map(|e| match e {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => Some(s.value()),
                        _ => None,
                    })
                    .collect();
                if lits.len() != 3 {
                    continue;
                }
                let pattern = match &arm.pat {
                    syn::Pat::Lit(syn::PatLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => Some(s.value()),
                    _ => None,
                };
                self.0.push((pattern, (lits[0].clone(), lits[2].clone())));
            }
            syn::visit::visit_expr_match(self, m);
        }
    }
    let mut arms = Arms(Vec::new());
    arms.visit_block(block);
    arms.0
}

struct Calls<'a, 'b> {
    crate_: &'a Crate<'a>,
    f: &'a FnInfo,
    bindings: &'a HashMap<String, Option<Target>>,
    out: &'b mut Analysis,
}

impl Calls<'_, '_> {
    fn site(&self) -> String {
        format!("{}::{}", self.f.file, self.f.name)
    }
}

impl<'ast> Visit<'ast> for Calls<'_, '_> {
    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        let method = m.method.to_string();
        if RAW.contains(&method.as_str()) {
            self.out.untraced.push(format!(
                "{}: `.{method}(…)` is a raw request through kube::Client; its paths are not modelled",
                self.site()
            ));
        }
        let apply = m.args.iter().any(|a| {
            a.to_token_stream()
                .to_string()
                .replace(' ', "")
                .contains("Patch::Apply")
        });
        if let Some(verbs) = verbs_of(&method, apply) {
            match self.crate_.resolve(self.f, &m.receiver, self.bindings) {
                Some(Resolved::Recv(target)) => self.out.calls.push(Call {
                    site: self.site(),
                    method: method.clone(),
                    verbs,
                    target,
                }),
                _ if STRICT.contains(&method.as_str()) => self.out.untraced.push(format!(
                    "{}: `{}.{method}(…)`: cannot tell which Api this is",
                    self.site(),
                    m.receiver.to_token_stream().to_string().replace(" . ", ".")
                )),
                _ => {}
            }
        } else if STRICT.contains(&method.as_str())
            && self
                .crate_
                .resolve(self.f, &m.receiver, self.bindings)
                .is_some()
        {
            self.out.untraced.push(format!(
                "{}: `.{method}(…)` (a subresource or entry call) is not modelled",
                self.site()
            ));
        }
        syn::visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*c.func {
            let discovery = p.path.segments.iter().any(|s| {
                s.ident == "discovery" || s.ident == "pinned_kind" || s.ident == "pinned_group"
            });
            if discovery {
                self.out.discovery.insert(self.site());
            }
            // kube::runtime helpers list and watch through an Api they are given.
            let last = p
                .path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            let watched = RUNTIME
                .contains(&last.as_str())
                .then(|| c.args.first())
                .flatten()
                .and_then(|api| self.crate_.resolve(self.f, api, self.bindings));
            if let Some(Resolved::Recv(target)) = watched {
                // A watcher lists, then watches from the listed version.
                self.out.calls.push(Call {
                    site: self.site(),
                    method: last.clone(),
                    verbs: vec!["list", "watch"],
                    target,
                });
            } else if RUNTIME.contains(&last.as_str()) {
                self.out.untraced.push(format!(
                    "{}: `{last}(…)` (kube::runtime) lists and watches through its Api; not modelled",
                    self.site()
                ));
            }
            if let Some(callee) = self.crate_.lookup(&self.f.file, &p.path) {
                let site = self.site();
                self.out
                    .callers
                    .entry(format!("{}::{}", callee.file, callee.name))
                    .or_default()
                    .insert(site);
            }
        }
        syn::visit::visit_expr_call(self, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Analyses the given files, written to a fresh folder.
    fn analyse_files(files: &[(&str, &str)]) -> Analysis {
        let dir = std::env::temp_dir().join(format!(
            "ferry-kube-calls-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let a = analyse(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        a
    }

    fn found(a: &Analysis) -> Vec<(String, String, Vec<&'static str>, Target)> {
        let mut out: Vec<_> = a
            .calls
            .iter()
            .map(|c| {
                (
                    c.site.clone(),
                    c.method.clone(),
                    c.verbs.clone(),
                    c.target.clone(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn traces_typed_helper_tuple_and_table_receivers() {
        let a = analyse_files(&[
            (
                "pods.rs",
                r#"
                fn pods(c: &Client, ns: &str) -> Api<Pod> { Api::namespaced(c.clone(), ns) }
                pub async fn all(c: &Client) {
                    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "x");
                    api.get_opt("a").await;
                    pods(c, "x").list(&lp).await;
                    let again = api.clone();
                    again.delete("a", &dp).await;
                    let names = vec![1];
                    names.get(0);
                }
                async fn by_param(api: &Api<Secret>) { api.create(&pp, &s).await; }
                #[cfg(test)]
                mod tests { fn t(api: Api<Node>) { api.delete("n", &dp); } }
                "#,
            ),
            (
                "dynamic.rs",
                r#"
                pub async fn dynamic_api(c: &Client, o: &Value) -> Result<(Api<DynamicObject>, String), E> {
                    let (r, caps) = kube::discovery::pinned_kind(c, &gvk).await?;
                    Ok((Api::all_with(c.clone(), &r), String::new()))
                }
                pub async fn apply(c: &Client, o: &Value) {
                    let (api, name) = dynamic_api(c, o).await?;
                    api.patch(&name, &params, &Patch::Apply(o)).await?;
                }
                fn resource(kind: &str) -> ApiResource {
                    let (g, v, p) = match kind {
                        "Gateway" => ("gateway.networking.k8s.io", "v1", "gateways"),
                        _ => ("gateway.networking.k8s.io", "v1", "httproutes"),
                    };
                    make(g, v, p)
                }
                fn table(c: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
                    Api::namespaced_with(c.clone(), ns, &resource(kind))
                }
                pub async fn gateways(c: &Client) {
                    table(c, "ns", "Gateway").get_opt("g").await;
                    table(c, "ns", kind).delete("r", &dp).await;
                    crate::dynamic::apply(c, &o).await;
                }
                "#,
            ),
        ]);
        assert!(a.untraced.is_empty(), "{:?}", a.untraced);
        let gateways = (
            "gateway.networking.k8s.io".to_string(),
            "gateways".to_string(),
        );
        let routes = (
            "gateway.networking.k8s.io".to_string(),
            "httproutes".to_string(),
        );
        assert_eq!(
            found(&a),
            vec![
                (
                    "dynamic.rs::apply".into(),
                    "patch".into(),
                    vec!["patch", "create"],
                    Target::Dynamic
                ),
                (
                    "dynamic.rs::gateways".into(),
                    "delete".into(),
                    vec!["delete"],
                    Target::Kinds(vec![gateways.clone(), routes])
                ),
                (
                    "dynamic.rs::gateways".into(),
                    "get_opt".into(),
                    vec!["get"],
                    Target::Kinds(vec![gateways])
                ),
                (
                    "pods.rs::all".into(),
                    "delete".into(),
                    vec!["delete"],
                    Target::Typed("ConfigMap".into())
                ),
                (
                    "pods.rs::all".into(),
                    "get_opt".into(),
                    vec!["get"],
                    Target::Typed("ConfigMap".into())
                ),
                (
                    "pods.rs::all".into(),
                    "list".into(),
                    vec!["list"],
                    Target::Typed("Pod".into())
                ),
                (
                    "pods.rs::by_param".into(),
                    "create".into(),
                    vec!["create"],
                    Target::Typed("Secret".into())
                ),
            ]
        );
        assert!(a.discovery.contains("dynamic.rs::dynamic_api"));
        assert!(a.callers["dynamic.rs::apply"].contains("dynamic.rs::gateways"));
    }

    #[test]
    fn reports_what_it_cannot_trace() {
        let a = analyse_files(&[(
            "opaque.rs",
            r#"
            impl Run { async fn go(&self, c: &Client) {
                self.api.patch("x", &pp, &patch).await;
                c.request::<Value>(req).await;
                let w = watcher(make_api(), cfg);
                let api: Api<Pod> = Api::namespaced(c.clone(), "x");
                api.patch_status("p", &pp, &patch).await;
            } }
            "#,
        )]);
        let text = a.untraced.join("\n");
        assert!(text.contains("self.api"), "{text}");
        assert!(text.contains("raw request"), "{text}");
        assert!(text.contains("watcher"), "{text}");
        assert!(text.contains("patch_status"), "{text}");
        assert!(a.calls.is_empty(), "{:?}", a.calls);
    }

    #[test]
    fn a_watcher_of_a_traced_api_lists_and_watches_its_resource() {
        let a = analyse_files(&[(
            "watch.rs",
            r#"
            async fn watch(client: Client) {
                let api: Api<ReplicaSet> = Api::namespaced(client, "x");
                let events = watcher(api, watcher::Config::default());
            }
            "#,
        )]);
        assert!(a.untraced.is_empty(), "{:?}", a.untraced);
        assert_eq!(a.calls.len(), 1, "{:?}", a.calls);
        assert_eq!(a.calls[0].site, "watch.rs::watch");
        assert_eq!(a.calls[0].verbs, ["list", "watch"]);
        assert_eq!(a.calls[0].target, Target::Typed("ReplicaSet".into()));
    }
}
