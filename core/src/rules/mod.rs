//! The rule language of segments, previews and fit scores, as a small
//! compiler with one module per stage:
//! `lexer` → `parser` (text → `ast`) → `check` (against the tenant's
//! fields) → `compile` (→ SQL with bound values). `json` is the
//! condition-builder form, `eval` an in-memory evaluator the compiled SQL
//! is tested against.

pub mod arbitrary;
pub mod ast;
pub mod check;
pub mod compile;
pub mod eval;
pub mod json;
pub mod lexer;
pub mod parser;

pub use ast::Rule;
pub use parser::parse;

#[cfg(test)]
mod tests;
