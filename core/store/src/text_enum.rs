//! Enums stored as TEXT with a CHECK constraint (readable in psql, cheap to extend with a
//! migration) and mapped to Rust enums here, so a typo in a status is a compile error. The
//! enums the API shows (statuses, decisions) are defined in `ferry-api` the same way.

/// Defines a `Copy` enum whose variants map to fixed strings in the database and in JSON.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt, )+
        }
    ) => {
        ferry_api::wire_enum! {
            $(#[$meta])*
            pub enum $name {
                $( $(#[$vmeta])* $variant = $text, )+
            }
        }
        ferry_api::sqlx_text!($name);
    };
}

pub(crate) use text_enum;
