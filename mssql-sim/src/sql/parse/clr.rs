//! Static methods of the CLR types, `hierarchyid::Parse('/1/')`: sqlparser would read `::`
//! as a PostgreSQL cast, so the three tokens `type :: Method` become one function-name word
//! `type::Method`, which the function dispatch knows (`sql::functions::clr`).

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Word};

/// The CLR types whose static methods T-SQL calls with `::`.
const CLR_TYPES: &[&str] = &["hierarchyid", "geometry", "geography"];

/// Joins `hierarchyid :: Parse` (whitespace allowed around `::`) into one word.
pub(super) fn rewrite_clr_static_calls(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Word(ty) = &tokens[i]
            && ty.quote_style.is_none()
            && CLR_TYPES.contains(&ty.value.to_lowercase().as_str())
        {
            let colons = super::tokens::skip_ws(&tokens, i + 1);
            let method = super::tokens::skip_ws(&tokens, colons + 1);
            if let (Some(Token::DoubleColon), Some(Token::Word(m))) =
                (tokens.get(colons), tokens.get(method))
            {
                out.push(Token::Word(Word {
                    value: format!("{}::{}", ty.value.to_lowercase(), m.value),
                    quote_style: None,
                    keyword: Keyword::NoKeyword,
                }));
                i = method + 1;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}
