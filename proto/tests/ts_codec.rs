//! The web app's protocol module (`web/src/gen/protocol.ts`) is generated from this crate, so
//! the wire is written once: the TypeScript types of every message, a postcard encoder and
//! decoder for each, the frame registry, and the constants the app needs (protocol version,
//! close codes, refusals, browser limits).
//!
//! This test reads `proto/src/*.rs` with `syn`, renders the TypeScript and compares it with the
//! committed file. After changing the protocol, regenerate with
//!
//! ```sh
//! PEER_REGEN_TS=1 cargo test -p peer-proto --test ts_codec
//! ```
//!
//! Shapes follow serde's JSON form (structs are objects, `Option` is `T | null`, enums are
//! externally tagged: a unit variant is its name, others `{ Name: … }`), byte strings are
//! `Uint8Array`, and integers are `number`: a `u64` must be below 2^53, except `u64::MAX`,
//! which is `Infinity` in TypeScript (the protocol's "no limit / from now on" value).

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, Fields, GenericArgument, Item, PathArguments, Type};

const OUTPUT: &str = "../web/src/gen/protocol.ts";

// ---------------------------------------------------------------------------------------------
// Reading the Rust side.

fn docs(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
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

/// `#[serde(...)]`: whether `rename_all = "snake_case"` is set; panics on attributes the
/// generator would get wrong.
fn snake_case(attrs: &[Attribute], what: &str) -> bool {
    let mut snake = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        a.parse_nested_meta(|m| {
            let name = m
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match name.as_str() {
                "rename_all" => {
                    let v = m.value()?.parse::<syn::LitStr>()?.value();
                    assert_eq!(v, "snake_case", "{what}: only rename_all = \"snake_case\"");
                    snake = true;
                }
                // Postcard ignores names; aliases only matter to JSON readers on the host.
                "alias" => {
                    m.value()?.parse::<syn::LitStr>()?;
                }
                // Bytes are `len | bytes` in postcard either way.
                "with" if m.value()?.parse::<syn::LitStr>()?.value() == "serde_bytes" => {}
                other => panic!(
                    "{what}: serde attribute `{other}` is not supported by the TypeScript \
                     generator (proto/tests/ts_codec.rs); postcard cannot carry most of them"
                ),
            }
            Ok(())
        })
        .unwrap();
    }
    snake
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

/// One entry of the `frames!` registry.
struct FrameEntry {
    docs: Vec<String>,
    byte: u8,
    name: String,
    msg: Option<Type>,
    sender: String,
}

struct Registry(Vec<FrameEntry>);

impl Parse for Registry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            let byte: syn::LitInt = input.parse()?;
            let name: syn::Ident = input.parse()?;
            let msg = if input.peek(syn::token::Paren) {
                let inner;
                syn::parenthesized!(inner in input);
                Some(inner.parse::<Type>()?)
            } else {
                None
            };
            let sender: syn::Ident = input.parse()?;
            input.parse::<syn::Token![,]>()?;
            out.push(FrameEntry {
                docs: docs(&attrs),
                byte: byte.base10_parse()?,
                name: name.to_string(),
                msg,
                sender: sender.to_string(),
            });
        }
        Ok(Registry(out))
    }
}

/// Evaluates the integer constant expressions used in the sources (literals, + - * /, names of
/// constants seen before).
fn eval(e: &Expr, known: &BTreeMap<String, i64>) -> Option<i64> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse().ok(),
        Expr::Binary(b) => {
            let (l, r) = (eval(&b.left, known)?, eval(&b.right, known)?);
            Some(match b.op {
                syn::BinOp::Add(_) => l + r,
                syn::BinOp::Sub(_) => l - r,
                syn::BinOp::Mul(_) => l * r,
                syn::BinOp::Div(_) => l / r,
                _ => return None,
            })
        }
        Expr::Paren(p) => eval(&p.expr, known),
        Expr::Path(p) => known
            .get(&p.path.segments.last()?.ident.to_string())
            .copied(),
        Expr::Cast(c) => eval(&c.expr, known),
        Expr::MethodCall(_) | Expr::Call(_) => None,
        _ => None,
    }
}

struct Source {
    /// Serde types by name.
    items: BTreeMap<String, Item>,
    /// `pub type` aliases by name.
    aliases: BTreeMap<String, (Vec<String>, Type)>,
    registry: Vec<FrameEntry>,
    /// Integer constants by module (`""` for the crate root) and name.
    consts: Vec<(String, String, Vec<String>, i64)>,
    refusals: Vec<(String, u8, String, Vec<String>)>,
}

fn error_text(attrs: &[Attribute]) -> String {
    for a in attrs.iter().filter(|a| a.path().is_ident("error")) {
        if let Ok(s) = a.parse_args::<syn::LitStr>() {
            return s.value();
        }
    }
    panic!("a refusal without #[error(\"…\")]")
}

fn read_sources() -> Source {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut src = Source {
        items: BTreeMap::new(),
        aliases: BTreeMap::new(),
        registry: Vec::new(),
        consts: Vec::new(),
        refusals: Vec::new(),
    };
    let mut known = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for path in files {
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let file = syn::parse_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut stack: Vec<(String, Vec<Item>)> = vec![(module, file.items)];
        while let Some((module, items)) = stack.pop() {
            for item in items {
                match item {
                    Item::Struct(ref s) if derives_serde(&s.attrs) => {
                        let name = s.ident.to_string();
                        assert!(
                            src.items.insert(name.clone(), item).is_none(),
                            "{name} twice"
                        );
                    }
                    Item::Enum(ref e) if e.ident == "Refusal" => {
                        for v in &e.variants {
                            let (_, disc) = v.discriminant.as_ref().expect("explicit codes");
                            let code = eval(disc, &known).expect("refusal code") as u8;
                            src.refusals.push((
                                v.ident.to_string(),
                                code,
                                error_text(&v.attrs),
                                docs(&v.attrs),
                            ));
                        }
                    }
                    Item::Enum(ref e) if derives_serde(&e.attrs) => {
                        let name = e.ident.to_string();
                        assert!(
                            src.items.insert(name.clone(), item).is_none(),
                            "{name} twice"
                        );
                    }
                    Item::Type(t) => {
                        src.aliases
                            .insert(t.ident.to_string(), (docs(&t.attrs), (*t.ty).clone()));
                    }
                    Item::Const(c) => {
                        if let Some(v) = eval(&c.expr, &known) {
                            known.insert(c.ident.to_string(), v);
                            src.consts.push((
                                module.clone(),
                                c.ident.to_string(),
                                docs(&c.attrs),
                                v,
                            ));
                        }
                    }
                    Item::Mod(m) => {
                        if let Some((_, items)) = m.content {
                            stack.push((format!("{module}::{}", m.ident), items));
                        }
                    }
                    Item::Macro(m) if m.mac.path.is_ident("frames") => {
                        src.registry = syn::parse2::<Registry>(m.mac.tokens.clone()).unwrap().0;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(!src.registry.is_empty(), "no frames! registry found");
    src
}

// ---------------------------------------------------------------------------------------------
// Rendering TypeScript.

/// A Rust type as the generator understands it.
enum Ty {
    U8,
    Varint(u32),
    U64,
    Bool,
    Str,
    Bytes,
    Fixed(usize),
    Option(Box<Ty>),
    Seq(Box<Ty>),
    Tuple(Vec<Ty>),
    Result(Box<Ty>, Box<Ty>),
    /// A named proto type (or alias, kept by name for the TypeScript type).
    Named(String),
}

fn args_of(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn model(ty: &Type) -> Ty {
    match ty {
        Type::Tuple(t) => Ty::Tuple(t.elems.iter().map(model).collect()),
        Type::Array(a) => {
            let n = eval(&a.len, &BTreeMap::new()).expect("array length") as usize;
            match model(&a.elem) {
                Ty::U8 => Ty::Fixed(n),
                _ => panic!("only byte arrays are supported"),
            }
        }
        Type::Path(p) => {
            let seg = p.path.segments.last().unwrap();
            let name = seg.ident.to_string();
            let args = args_of(seg);
            match (name.as_str(), args.as_slice()) {
                ("u8", []) => Ty::U8,
                ("u16", []) => Ty::Varint(16),
                ("u32", []) => Ty::Varint(32),
                ("u64", []) => Ty::U64,
                ("bool", []) => Ty::Bool,
                ("String", []) => Ty::Str,
                ("Vec", [t]) => match model(t) {
                    Ty::U8 => Ty::Bytes,
                    inner => Ty::Seq(Box::new(inner)),
                },
                ("Option", [t]) => Ty::Option(Box::new(model(t))),
                ("Box", [t]) => model(t),
                ("Result", [t, e]) => Ty::Result(Box::new(model(t)), Box::new(model(e))),
                (_, []) => Ty::Named(name),
                _ => panic!("type {name} with these arguments is not supported"),
            }
        }
        _ => panic!("unsupported type"),
    }
}

impl Ty {
    /// The TypeScript type; names of proto types go into `refs`.
    fn ts(&self, refs: &mut BTreeSet<String>) -> String {
        match self {
            Ty::U8 | Ty::Varint(_) | Ty::U64 => "number".into(),
            Ty::Bool => "boolean".into(),
            Ty::Str => "string".into(),
            Ty::Bytes | Ty::Fixed(_) => "Uint8Array".into(),
            Ty::Option(t) => format!("{} | null", t.ts(refs)),
            Ty::Seq(t) => {
                let inner = t.ts(refs);
                if inner.contains(' ') {
                    format!("({inner})[]")
                } else {
                    format!("{inner}[]")
                }
            }
            Ty::Tuple(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|t| t.ts(refs))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ty::Result(t, e) => format!("{{ Ok: {} }} | {{ Err: {} }}", t.ts(refs), e.ts(refs)),
            Ty::Named(n) => {
                refs.insert(n.clone());
                n.clone()
            }
        }
    }

    /// A statement writing `v` to the writer `w`.
    fn enc(&self, v: &str, depth: usize) -> String {
        let x = format!("x{depth}");
        match self {
            Ty::U8 => format!("w.u8({v});"),
            Ty::Varint(bits) => format!("w.varint({v}, {bits});"),
            Ty::U64 => format!("w.u64({v});"),
            Ty::Bool => format!("w.bool({v});"),
            Ty::Str => format!("w.str({v});"),
            Ty::Bytes => format!("w.bytes({v});"),
            Ty::Fixed(n) => format!("w.fixed({v}, {n});"),
            Ty::Option(t) => format!(
                "if ({v} === null) w.u8(0); else {{ w.u8(1); {} }}",
                t.enc(v, depth)
            ),
            Ty::Seq(t) => format!(
                "w.varint({v}.length, 64); for (const {x} of {v}) {{ {} }}",
                t.enc(&x, depth + 1)
            ),
            Ty::Tuple(items) => items
                .iter()
                .enumerate()
                .map(|(i, t)| t.enc(&format!("{v}[{i}]"), depth + 1))
                .collect::<Vec<_>>()
                .join(" "),
            Ty::Result(t, e) => format!(
                "if ('Ok' in {v}) {{ w.u8(0); {} }} else {{ w.u8(1); {} }}",
                t.enc(&format!("{v}.Ok"), depth + 1),
                e.enc(&format!("{v}.Err"), depth + 1)
            ),
            Ty::Named(n) => format!("enc{n}(w, {v});"),
        }
    }

    /// An expression reading a value from the reader `r`.
    fn dec(&self) -> String {
        match self {
            Ty::U8 => "r.u8()".into(),
            Ty::Varint(bits) => format!("r.varint({bits})"),
            Ty::U64 => "r.u64()".into(),
            Ty::Bool => "r.bool()".into(),
            Ty::Str => "r.str()".into(),
            Ty::Bytes => "r.bytes()".into(),
            Ty::Fixed(n) => format!("r.fixed({n})"),
            Ty::Option(t) => format!("(r.option() ? {} : null)", t.dec()),
            Ty::Seq(t) => format!("r.seq(() => {})", t.dec()),
            Ty::Tuple(items) => format!(
                "[{}] as {}",
                items.iter().map(|t| t.dec()).collect::<Vec<_>>().join(", "),
                self.ts(&mut BTreeSet::new())
            ),
            Ty::Result(t, e) => format!(
                "(r.variant(2) === 0 ? {{ Ok: {} }} : {{ Err: {} }})",
                t.dec(),
                e.dec()
            ),
            Ty::Named(n) => format!("dec{n}(r)"),
        }
    }
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

/// The TypeScript of one named type: its type declaration and its codec.
fn render(item: &Item, refs: &mut BTreeSet<String>) -> (String, String) {
    let mut ty = String::new();
    let mut codec = String::new();
    match item {
        Item::Struct(s) => {
            let name = s.ident.to_string();
            snake_case(&s.attrs, &name);
            comment(&mut ty, "", &docs(&s.attrs));
            match &s.fields {
                Fields::Named(f) => {
                    writeln!(ty, "export interface {name} {{").unwrap();
                    let mut enc = Vec::new();
                    let mut dec = Vec::new();
                    for field in &f.named {
                        snake_case(&field.attrs, &name);
                        comment(&mut ty, "  ", &docs(&field.attrs));
                        let fname = field.ident.as_ref().unwrap().to_string();
                        let m = model(&field.ty);
                        writeln!(ty, "  {fname}: {};", m.ts(refs)).unwrap();
                        enc.push(format!("  {}", m.enc(&format!("v.{fname}"), 0)));
                        dec.push(format!("    {fname}: {},", m.dec()));
                    }
                    ty.push_str("}\n");
                    writeln!(
                        codec,
                        "export function enc{name}(w: Writer, v: {name}): void {{\n{}\n}}",
                        enc.join("\n")
                    )
                    .unwrap();
                    writeln!(
                        codec,
                        "export function dec{name}(r: Reader): {name} {{\n  return {{\n{}\n  }};\n}}",
                        dec.join("\n")
                    )
                    .unwrap();
                }
                Fields::Unnamed(f) => {
                    let m = if f.unnamed.len() == 1 {
                        model(&f.unnamed[0].ty)
                    } else {
                        Ty::Tuple(f.unnamed.iter().map(|x| model(&x.ty)).collect())
                    };
                    writeln!(ty, "export type {name} = {};", m.ts(refs)).unwrap();
                    writeln!(
                        codec,
                        "export function enc{name}(w: Writer, v: {name}): void {{\n  {}\n}}",
                        m.enc("v", 0)
                    )
                    .unwrap();
                    writeln!(
                        codec,
                        "export function dec{name}(r: Reader): {name} {{\n  return {};\n}}",
                        m.dec()
                    )
                    .unwrap();
                }
                Fields::Unit => panic!("{name}: unit structs are not supported"),
            }
        }
        Item::Enum(e) => {
            let name = e.ident.to_string();
            let snake_names = snake_case(&e.attrs, &name);
            comment(&mut ty, "", &docs(&e.attrs));
            writeln!(ty, "export type {name} =").unwrap();
            let mut enc = Vec::new();
            let mut dec = Vec::new();
            for (i, v) in e.variants.iter().enumerate() {
                let what = format!("{name}::{}", v.ident);
                snake_case(&v.attrs, &what);
                let vname = if snake_names {
                    snake(&v.ident.to_string())
                } else {
                    v.ident.to_string()
                };
                comment(&mut ty, "  ", &docs(&v.attrs));
                let body = match &v.fields {
                    Fields::Unit => {
                        enc.push(format!(
                            "  if (v === '{vname}') {{ w.varint({i}, 32); return; }}"
                        ));
                        dec.push(format!("    case {i}: return '{vname}';"));
                        format!("'{vname}'")
                    }
                    Fields::Unnamed(f) => {
                        let m = if f.unnamed.len() == 1 {
                            model(&f.unnamed[0].ty)
                        } else {
                            Ty::Tuple(f.unnamed.iter().map(|x| model(&x.ty)).collect())
                        };
                        enc.push(format!(
                            "  if (typeof v === 'object' && '{vname}' in v) {{ w.varint({i}, 32); {} return; }}",
                            m.enc(&format!("v.{vname}"), 0)
                        ));
                        dec.push(format!("    case {i}: return {{ {vname}: {} }};", m.dec()));
                        format!("{{ {vname}: {} }}", m.ts(refs))
                    }
                    Fields::Named(f) => {
                        let mut fields = String::new();
                        let mut fenc = Vec::new();
                        let mut fdec = Vec::new();
                        for field in &f.named {
                            snake_case(&field.attrs, &what);
                            comment(&mut fields, "      ", &docs(&field.attrs));
                            let fname = field.ident.as_ref().unwrap().to_string();
                            let m = model(&field.ty);
                            writeln!(fields, "      {fname}: {};", m.ts(refs)).unwrap();
                            fenc.push(m.enc(&format!("v.{vname}.{fname}"), 0));
                            fdec.push(format!("{fname}: {}", m.dec()));
                        }
                        enc.push(format!(
                            "  if (typeof v === 'object' && '{vname}' in v) {{ w.varint({i}, 32); {} return; }}",
                            fenc.join(" ")
                        ));
                        dec.push(format!(
                            "    case {i}: return {{ {vname}: {{ {} }} }};",
                            fdec.join(", ")
                        ));
                        format!("{{\n    {vname}: {{\n{fields}    }};\n  }}")
                    }
                };
                writeln!(ty, "  | {body}").unwrap();
            }
            let trimmed = ty.trim_end().to_string();
            ty = format!("{trimmed};\n");
            writeln!(
                codec,
                "export function enc{name}(w: Writer, v: {name}): void {{\n{}\n  throw new PostcardError('not a {name}');\n}}",
                enc.join("\n")
            )
            .unwrap();
            writeln!(
                codec,
                "export function dec{name}(r: Reader): {name} {{\n  switch (r.variant({})) {{\n{}\n    default: throw new PostcardError('bad {name}');\n  }}\n}}",
                e.variants.len(),
                dec.join("\n")
            )
            .unwrap();
        }
        _ => unreachable!(),
    }
    (ty, codec)
}

fn ts_const(name: &str) -> String {
    name.to_string()
}

fn generate() -> String {
    let src = read_sources();
    let mut out = String::from(
        "// Generated from the peer-proto crate (proto/src) by proto/tests/ts_codec.rs.\n\
         // Do not edit: change the Rust types, then run\n\
         //   PEER_REGEN_TS=1 cargo test -p peer-proto --test ts_codec\n\
         // Shapes are serde's JSON form (externally tagged enums); bytes are Uint8Array;\n\
         // integers are numbers (a u64 below 2^53, or Infinity for u64::MAX); the codec is\n\
         // postcard, as on the native streams.\n\
         /* eslint-disable */\n\
         import { PostcardError, Reader, Writer } from '../postcard';\n\n",
    );

    // Constants.
    for (module, name, lines, value) in &src.consts {
        let prefix = match module.as_str() {
            "consts" | "frame" | "codec" => String::new(),
            "browser" => String::new(),
            "close::ws" => "WS_".into(),
            _ => continue,
        };
        comment(&mut out, "", lines);
        writeln!(out, "export const {prefix}{} = {value};", ts_const(name)).unwrap();
    }
    out.push('\n');
    out.push_str("/** Why the host refused a handshake: code, name and its words for people. */\n");
    out.push_str("export const REFUSALS: Record<number, { name: string; text: string }> = {\n");
    for (name, code, text, _) in &src.refusals {
        writeln!(
            out,
            "  {code}: {{ name: '{name}', text: {} }},",
            serde_json::to_string(text).unwrap()
        )
        .unwrap();
    }
    out.push_str("};\n");

    // Every type the registry reaches.
    let mut refs = BTreeSet::new();
    for f in &src.registry {
        if let Some(m) = &f.msg {
            model(m).ts(&mut refs);
        }
    }
    let mut done = BTreeSet::new();
    let mut todo: Vec<String> = refs.into_iter().collect();
    let mut rendered = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let mut refs = BTreeSet::new();
        let text = if let Some(item) = src.items.get(&name) {
            render(item, &mut refs)
        } else if let Some((lines, target)) = src.aliases.get(&name) {
            let m = model(target);
            let mut ty = String::new();
            comment(&mut ty, "", lines);
            writeln!(ty, "export type {name} = {};", m.ts(&mut refs)).unwrap();
            let codec = format!(
                "export function enc{name}(w: Writer, v: {name}): void {{\n  {}\n}}\nexport function dec{name}(r: Reader): {name} {{\n  return {};\n}}\n",
                m.enc("v", 0),
                m.dec()
            );
            (ty, codec)
        } else {
            panic!("{name} is on the wire but not defined in proto/src");
        };
        rendered.insert(name, text);
        todo.extend(refs);
    }
    for (ty, codec) in rendered.values() {
        out.push('\n');
        out.push_str(ty);
        out.push_str(codec);
    }

    // The registry.
    out.push_str("\n/** Who may send a frame type. */\n");
    out.push_str("export type Sender = 'Client' | 'Host' | 'Either';\n\n");
    out.push_str("/** One frame: its type and its message. */\nexport type Frame =\n");
    let mut refs = BTreeSet::new();
    for f in &src.registry {
        comment(&mut out, "  ", &f.docs);
        match &f.msg {
            Some(m) => writeln!(
                out,
                "  | {{ type: '{}'; message: {} }}",
                f.name,
                model(m).ts(&mut refs)
            ),
            None => writeln!(out, "  | {{ type: '{}' }}", f.name),
        }
        .unwrap();
    }
    let trimmed = out.trim_end().to_string();
    out = format!("{trimmed};\n\n");
    out.push_str("/** The registry: type byte and sender of every frame type. */\n");
    out.push_str(
        "export const FRAME_TYPES: Record<Frame['type'], { byte: number; sender: Sender }> = {\n",
    );
    for f in &src.registry {
        writeln!(
            out,
            "  {}: {{ byte: 0x{:02x}, sender: '{}' }},",
            f.name, f.byte, f.sender
        )
        .unwrap();
    }
    out.push_str("};\n\n");
    out.push_str(
        "/** Appends a frame body (type byte, postcard payload) to `w`. */\n\
         export function encodeFrameBody(w: Writer, f: Frame): void {\n  switch (f.type) {\n",
    );
    for f in &src.registry {
        match &f.msg {
            Some(m) => writeln!(
                out,
                "    case '{}': w.u8(0x{:02x}); {} return;",
                f.name,
                f.byte,
                model(m).enc("f.message", 0)
            ),
            None => writeln!(
                out,
                "    case '{}': w.u8(0x{:02x}); return;",
                f.name, f.byte
            ),
        }
        .unwrap();
    }
    out.push_str("  }\n}\n\n");
    out.push_str(
        "/**\n * Decodes a frame body that fills the reader to its end. Throws FrameError with the\n * words the Rust decoder uses (unknown type, malformed, trailing bytes).\n */\n\
         export function decodeFrameBody(r: Reader): Frame {\n  if (r.done()) throw new FrameError('empty frame');\n  const byte = r.u8();\n  let f: Frame;\n  try {\n    switch (byte) {\n",
    );
    for f in &src.registry {
        match &f.msg {
            Some(m) => writeln!(
                out,
                "      case 0x{:02x}: f = {{ type: '{}', message: {} }}; break;",
                f.byte,
                f.name,
                model(m).dec()
            ),
            None => writeln!(
                out,
                "      case 0x{:02x}: f = {{ type: '{}' }}; break;",
                f.byte, f.name
            ),
        }
        .unwrap();
    }
    out.push_str(
        "      default: throw new FrameError(`unknown frame type 0x${byte.toString(16).padStart(2, '0')}`);\n    }\n  } catch (e) {\n    if (e instanceof PostcardError) throw new FrameError(`malformed ${FRAME_NAMES[byte] ?? byte} frame`);\n    throw e;\n  }\n  if (!r.done()) throw new FrameError(`trailing bytes after ${f.type} frame`);\n  return f;\n}\n\n",
    );
    out.push_str("const FRAME_NAMES: Record<number, string> = {\n");
    for f in &src.registry {
        writeln!(out, "  0x{:02x}: '{}',", f.byte, f.name).unwrap();
    }
    out.push_str("};\n\n/** A frame that could not be decoded. */\nexport class FrameError extends Error {}\n");
    out
}

#[test]
fn typescript_protocol_is_current() {
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
         PEER_REGEN_TS=1 cargo test -p peer-proto --test ts_codec\nand commit the result.",
        path.display()
    );
}
