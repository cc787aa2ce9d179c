//! Who may do what in an organisation: one matrix of role × action, the only place an
//! authorisation decision is made. `docs/core.md` shows the same table.

use serde::{Deserialize, Serialize};

/// A member's role in an organisation, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Editor,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];
}

/// Everything a member can ask of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadOrg,
    RenameOrg,
    DeleteOrg,
    ListMembers,
    /// Add, change or remove a member whose role is, or becomes, admin, editor or viewer.
    ManageMembers,
    /// Add, change or remove an owner, or make someone one.
    ManageOwners,
    ReadAudit,
    /// Read projects and documents.
    ReadContent,
    /// Create, change and delete documents.
    WriteContent,
    /// Create, rename and delete projects.
    ManageProjects,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::ReadOrg,
        Action::RenameOrg,
        Action::DeleteOrg,
        Action::ListMembers,
        Action::ManageMembers,
        Action::ManageOwners,
        Action::ReadAudit,
        Action::ReadContent,
        Action::WriteContent,
        Action::ManageProjects,
    ];
}

/// The matrix: for each action, whether owner, admin, editor and viewer may take it.
const MATRIX: [(Action, [bool; 4]); 10] = [
    //                       owner  admin  editor viewer
    (Action::ReadOrg, [true, true, true, true]),
    (Action::RenameOrg, [true, true, false, false]),
    (Action::DeleteOrg, [true, false, false, false]),
    (Action::ListMembers, [true, true, true, true]),
    (Action::ManageMembers, [true, true, false, false]),
    (Action::ManageOwners, [true, false, false, false]),
    (Action::ReadAudit, [true, true, false, false]),
    (Action::ReadContent, [true, true, true, true]),
    (Action::WriteContent, [true, true, true, false]),
    (Action::ManageProjects, [true, true, false, false]),
];

/// Whether `role` may take `action`.
pub fn allows(role: Role, action: Action) -> bool {
    let column = match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Editor => 2,
        Role::Viewer => 3,
    };
    MATRIX
        .iter()
        .find(|(row, _)| *row == action)
        .is_some_and(|(_, cells)| cells[column])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_row() {
        for action in Action::ALL {
            assert_eq!(MATRIX.iter().filter(|(row, _)| *row == action).count(), 1, "{action:?}");
        }
    }

    #[test]
    fn only_owners_delete_or_touch_owners_and_everyone_reads() {
        for role in Role::ALL {
            assert!(allows(role, Action::ReadOrg) && allows(role, Action::ListMembers));
            assert_eq!(allows(role, Action::DeleteOrg), role == Role::Owner);
            assert_eq!(allows(role, Action::ManageOwners), role == Role::Owner);
            assert_eq!(
                allows(role, Action::ManageMembers),
                matches!(role, Role::Owner | Role::Admin)
            );
        }
    }
}
