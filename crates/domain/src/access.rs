//! Who may write what. Reads are open to everyone; every write is made by an [`Actor`]: a
//! token's holder, or the operator at the command line.

use std::fmt;

use crate::codes::Iso3;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Writes every report and the shared organisation list; the operator's role.
    Admin,
    /// Writes the reports of its countries only (a platform's information-management team).
    Editor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Editor => "EDITOR",
        }
    }

    /// Reads a role as stored or typed (`admin`, `EDITOR`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "ADMIN" => Some(Self::Admin),
            "EDITOR" => Some(Self::Editor),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The author of a write, recorded in the history with every change it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's id; `None` for the operator at the command line (a local import).
    pub token_id: Option<i32>,
    /// The token's label, or what ran the local write ("plangraph import").
    pub label: String,
    pub role: Role,
    /// The countries an editor may write; ignored for an admin.
    pub countries: Vec<Iso3>,
}

impl Actor {
    /// The operator at the command line, who can already write the store's file or database
    /// directly and so gains nothing from a check.
    pub fn local(label: &str) -> Self {
        Self {
            token_id: None,
            label: label.to_owned(),
            role: Role::Admin,
            countries: Vec::new(),
        }
    }

    /// May this actor write a report about `country` (`None`: a regional report)? Editors are
    /// scoped to countries, so a regional report is an admin's.
    pub fn may_write_report_of(&self, country: Option<&str>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Editor => {
                country.is_some_and(|iso3| self.countries.iter().any(|c| c.as_str() == iso3))
            }
        }
    }

    /// Organisations are shared by every country's reports, so changing one is an admin's
    /// decision; any writer may add a new one and link it to the reports it writes.
    pub fn may_change_organizations(&self) -> bool {
        self.role == Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor_of(codes: &[&str]) -> Actor {
        Actor {
            token_id: Some(1),
            label: "GTRM IM team".to_owned(),
            role: Role::Editor,
            countries: codes.iter().filter_map(|c| Iso3::parse(c).ok()).collect(),
        }
    }

    #[test]
    fn an_editor_writes_only_the_reports_of_its_countries() {
        let editor = editor_of(&["PER", "ECU"]);
        assert!(editor.may_write_report_of(Some("PER")));
        assert!(editor.may_write_report_of(Some("ECU")));
        assert!(!editor.may_write_report_of(Some("COL")));
        assert!(!editor.may_write_report_of(None));
        assert!(!editor.may_change_organizations());
    }

    #[test]
    fn an_admin_and_the_local_operator_write_everything() {
        let admin = Actor {
            role: Role::Admin,
            ..editor_of(&[])
        };
        assert!(admin.may_write_report_of(Some("COL")));
        assert!(admin.may_write_report_of(None));
        assert!(Actor::local("plangraph import").may_change_organizations());
    }

    #[test]
    fn roles_read_in_any_letter_case() {
        assert_eq!(Role::parse("editor"), Some(Role::Editor));
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse("owner"), None);
    }
}
