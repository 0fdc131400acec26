//! The web app's protocol types (`web/src/gen/protocol.ts`) are generated from the Rust types
//! of the browser channel, so they are written once.
//!
//! This test reads `peer/src/proto/messages.rs` and `peer/src/proto/browser.rs`, renders every
//! type reachable from `BrowserToHost` and `HostToBrowser` as TypeScript in serde's JSON form,
//! and compares with the committed file. After changing those types, regenerate with
//!
//! ```sh
//! PEER_REGEN_TS=1 cargo test -p peer --test ts_types
//! ```
//!
//! Integers become `number`: the JSON values the browser sees stay below 2^53 except
//! `instance`, which the app only compares for equality.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use syn::{Attribute, Fields, GenericArgument, Item, PathArguments, Type};

const SOURCES: [&str; 2] = ["src/proto/messages.rs", "src/proto/browser.rs"];
const ROOTS: [&str; 2] = ["BrowserToHost", "HostToBrowser"];
const OUTPUT: &str = "../web/src/gen/protocol.ts";

/// The serde container attributes the generator understands.
#[derive(Default)]
struct Serde {
    tag: Option<String>,
    rename_all_snake: bool,
}

fn docs(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn derives_serde(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive") && {
            let mut found = false;
            let _ = a.parse_nested_meta(|m| {
                if m.path.is_ident("Serialize") || m.path.is_ident("Deserialize") {
                    found = true;
                }
                Ok(())
            });
            found
        }
    })
}

/// Reads `#[serde(...)]`; panics on anything the generator would render wrongly.
fn serde_attrs(attrs: &[Attribute], what: &str) -> Serde {
    let mut out = Serde::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        a.parse_nested_meta(|m| {
            let name = m
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match name.as_str() {
                "tag" => out.tag = Some(m.value()?.parse::<syn::LitStr>()?.value()),
                "rename_all" => {
                    let v = m.value()?.parse::<syn::LitStr>()?.value();
                    assert_eq!(
                        v, "snake_case",
                        "{what}: only rename_all = \"snake_case\" is supported"
                    );
                    out.rename_all_snake = true;
                }
                // Bytes as JSON are an array of numbers either way.
                "with" if m.value()?.parse::<syn::LitStr>()?.value() == "serde_bytes" => {}
                other => panic!(
                    "{what}: serde attribute `{other}` is not supported by the TypeScript \
                     generator (peer/tests/ts_types.rs); extend it"
                ),
            }
            Ok(())
        })
        .unwrap();
    }
    out
}

fn snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.extend(c.to_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// The TypeScript for a Rust type; names of our own types go into `refs`.
fn ts(ty: &Type, refs: &mut BTreeSet<String>) -> String {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => "null".into(),
        Type::Tuple(t) => format!(
            "[{}]",
            t.elems
                .iter()
                .map(|e| ts(e, refs))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Array(a) => format!("{}[]", ts(&a.elem, refs)),
        Type::Path(p) => {
            let seg = p.path.segments.last().unwrap();
            let name = seg.ident.to_string();
            let args: Vec<&Type> = match &seg.arguments {
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .filter_map(|g| match g {
                        GenericArgument::Type(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match (name.as_str(), args.as_slice()) {
                (
                    "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "f32"
                    | "f64",
                    [],
                ) => "number".into(),
                ("bool", []) => "boolean".into(),
                ("String", []) => "string".into(),
                ("Option", [t]) => format!("{} | null", ts(t, refs)),
                ("Vec", [t]) => {
                    let inner = ts(t, refs);
                    if inner.contains(' ') {
                        format!("({inner})[]")
                    } else {
                        format!("{inner}[]")
                    }
                }
                ("Box", [t]) => ts(t, refs),
                ("Result", [t, e]) => {
                    format!("{{ Ok: {} }} | {{ Err: {} }}", ts(t, refs), ts(e, refs))
                }
                (_, []) => {
                    refs.insert(name.clone());
                    name
                }
                _ => panic!("type {name} with these arguments is not supported by the generator"),
            }
        }
        other => panic!("unsupported type {}", quote_type(other)),
    }
}

fn quote_type(ty: &Type) -> String {
    format!("{:?}", std::mem::discriminant(ty))
}

fn comment(out: &mut String, indent: &str, lines: &[String]) {
    match lines {
        [] => {}
        [one] => writeln!(out, "{indent}/** {one} */").unwrap(),
        many => {
            writeln!(out, "{indent}/**").unwrap();
            for l in many {
                if l.is_empty() {
                    writeln!(out, "{indent} *").unwrap();
                } else {
                    writeln!(out, "{indent} * {l}").unwrap();
                }
            }
            writeln!(out, "{indent} */").unwrap();
        }
    }
}

fn named_fields(
    fields: &syn::FieldsNamed,
    what: &str,
    refs: &mut BTreeSet<String>,
    indent: &str,
) -> String {
    let mut out = String::new();
    for f in &fields.named {
        serde_attrs(&f.attrs, what);
        comment(&mut out, indent, &docs(&f.attrs));
        let name = f.ident.as_ref().unwrap();
        writeln!(out, "{indent}{name}: {};", ts(&f.ty, refs)).unwrap();
    }
    out
}

fn render(item: &Item, refs: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    match item {
        Item::Struct(s) => {
            let name = s.ident.to_string();
            let serde = serde_attrs(&s.attrs, &name);
            assert!(serde.tag.is_none(), "{name}: tag on a struct");
            comment(&mut out, "", &docs(&s.attrs));
            match &s.fields {
                Fields::Named(f) => {
                    writeln!(out, "export interface {name} {{").unwrap();
                    out.push_str(&named_fields(f, &name, refs, "  "));
                    out.push_str("}\n");
                }
                Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                    writeln!(out, "export type {name} = {};", ts(&f.unnamed[0].ty, refs)).unwrap();
                }
                Fields::Unnamed(f) => {
                    let items: Vec<String> = f.unnamed.iter().map(|x| ts(&x.ty, refs)).collect();
                    writeln!(out, "export type {name} = [{}];", items.join(", ")).unwrap();
                }
                Fields::Unit => writeln!(out, "export type {name} = null;").unwrap(),
            }
        }
        Item::Enum(e) => {
            let name = e.ident.to_string();
            let serde = serde_attrs(&e.attrs, &name);
            comment(&mut out, "", &docs(&e.attrs));
            writeln!(out, "export type {name} =").unwrap();
            for v in &e.variants {
                let what = format!("{name}::{}", v.ident);
                serde_attrs(&v.attrs, &what);
                let vname = if serde.rename_all_snake {
                    snake(&v.ident.to_string())
                } else {
                    v.ident.to_string()
                };
                comment(&mut out, "  ", &docs(&v.attrs));
                let body = match (&serde.tag, &v.fields) {
                    (None, Fields::Unit) => format!("\"{vname}\""),
                    (None, Fields::Unnamed(f)) if f.unnamed.len() == 1 => {
                        format!("{{ {vname}: {} }}", ts(&f.unnamed[0].ty, refs))
                    }
                    (None, Fields::Unnamed(f)) => {
                        let items: Vec<String> =
                            f.unnamed.iter().map(|x| ts(&x.ty, refs)).collect();
                        format!("{{ {vname}: [{}] }}", items.join(", "))
                    }
                    (None, Fields::Named(f)) => {
                        format!(
                            "{{\n    {vname}: {{\n{}    }};\n  }}",
                            named_fields(f, &what, refs, "      ")
                        )
                    }
                    (Some(tag), Fields::Unit) => format!("{{ {tag}: \"{vname}\" }}"),
                    (Some(tag), Fields::Named(f)) => {
                        format!(
                            "{{\n    {tag}: \"{vname}\";\n{}  }}",
                            named_fields(f, &what, refs, "    ")
                        )
                    }
                    (Some(tag), Fields::Unnamed(f)) if f.unnamed.len() == 1 => {
                        format!(
                            "({{ {tag}: \"{vname}\" }} & {})",
                            ts(&f.unnamed[0].ty, refs)
                        )
                    }
                    (Some(_), Fields::Unnamed(_)) => {
                        panic!("{what}: internally tagged tuple variants cannot be serialized")
                    }
                };
                writeln!(out, "  | {body}").unwrap();
            }
            let trimmed = out.trim_end().to_string();
            out = format!("{trimmed};\n");
        }
        _ => unreachable!(),
    }
    out
}

fn generate() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    for src in SOURCES {
        let text = std::fs::read_to_string(dir.join(src)).unwrap();
        let file = syn::parse_file(&text).unwrap();
        for item in file.items {
            let (name, attrs) = match &item {
                Item::Struct(s) => (s.ident.to_string(), &s.attrs),
                Item::Enum(e) => (e.ident.to_string(), &e.attrs),
                _ => continue,
            };
            if derives_serde(attrs) {
                assert!(
                    items.insert(name.clone(), item).is_none(),
                    "{name} defined twice"
                );
            }
        }
    }
    // Render the roots and everything they reach, in a stable order.
    let mut done = BTreeSet::new();
    let mut todo: Vec<String> = ROOTS.iter().map(|s| s.to_string()).collect();
    let mut rendered = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let item = items.get(&name).unwrap_or_else(|| {
            panic!("{name} is used by the browser channel but not defined in {SOURCES:?}")
        });
        let mut refs = BTreeSet::new();
        rendered.insert(name, render(item, &mut refs));
        todo.extend(refs);
    }
    let mut out = String::from(
        "// Generated from peer/src/proto/messages.rs and peer/src/proto/browser.rs by\n\
         // peer/tests/ts_types.rs. Do not edit: change the Rust types, then run\n\
         //   PEER_REGEN_TS=1 cargo test -p peer --test ts_types\n\
         // serde's JSON form: structs are objects, Option is T | null, enums are externally\n\
         // tagged unless marked otherwise, byte arrays are arrays of numbers.\n",
    );
    for (_, text) in rendered {
        out.push('\n');
        out.push_str(&text);
    }
    out
}

#[test]
fn typescript_protocol_types_are_current() {
    let generated = generate();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(OUTPUT);
    if std::env::var_os("PEER_REGEN_TS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale (the Rust protocol types changed). Regenerate it with\n  \
         PEER_REGEN_TS=1 cargo test -p peer --test ts_types\nand commit the result.",
        path.display()
    );
}
