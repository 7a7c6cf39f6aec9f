//! A multi-agency approval workflow (业务协同).
//!
//! An organisation's admin `define`s a kind of case once: its named steps, each approved by a
//! named role of a named organisation within a number of blocks. A user or admin of any
//! organisation `open`s a case of a kind; the case then waits at its first step. Only the step's
//! organisation and role can `approve` it (moving it to the next step, or completing it after
//! the last) or `reject` it, and only up to the step's deadline height; an overdue step can
//! only be `withdraw`n by the opening organisation. Every action is kept in the case's history
//! (a storage [`List`]); `status` says where a case stands and who holds it.
//!
//! Methods (typed arguments of `docs/contracts.md` §2):
//! - `define(kind: str, steps: list<(str,str,str,u64)>)`: steps as (name, organisation, role,
//!   blocks allowed); event `kind_defined` [kind];
//! - `open(kind: str, title: str) -> u64`: the new case's number; event `case_opened`
//!   [case (u64), kind];
//! - `approve(case: u64, note: str)`: event `step_approved` [case, step], and `case_completed`
//!   [case] after the last step;
//! - `reject(case: u64, reason: str)`: event `case_rejected` [case, step];
//! - `withdraw(case: u64, reason: str)`: event `case_withdrawn` [case];
//! - queries `status(case: u64) -> Status`, `history(case: u64) -> list<Entry>`,
//!   `steps(kind: str) -> list<Step>`.

use gmchain_sdk::{
    abort, block_height, block_time_ms, caller, ensure, Caller, List, Map, Role, Value,
};

gmchain_sdk::record! {
    /// One step of a kind of case.
    pub struct Step {
        /// The step's name (`review`).
        pub name: String,
        /// The organisation whose role approves it.
        pub organisation: String,
        /// `admin`, `user`, `auditor` or `node`.
        pub role: String,
        /// Blocks allowed from the step's start to its deadline.
        pub blocks: u64,
    }
}

gmchain_sdk::record! {
    /// A case as stored.
    pub struct Case {
        pub kind: String,
        pub title: String,
        pub opened_by: String,
        /// `open`, `completed`, `rejected` or `withdrawn`.
        pub state: String,
        /// The current step's index.
        pub step: u64,
        /// The last height at which the current step can be decided.
        pub deadline: u64,
    }
}

gmchain_sdk::record! {
    /// Where a case stands (`status`).
    pub struct Status {
        pub kind: String,
        pub title: String,
        pub opened_by: String,
        pub state: String,
        /// The current step's name (empty once the case is closed).
        pub step: String,
        /// Steps done so far, of `steps`.
        pub done: u64,
        pub steps: u64,
        /// Who holds the case: the organisation and role that must act (empty once closed).
        pub organisation: String,
        pub role: String,
        pub deadline: u64,
        /// Whether the current step's deadline has passed.
        pub overdue: bool,
    }
}

gmchain_sdk::record! {
    /// One action in a case's history.
    pub struct Entry {
        pub height: u64,
        pub time_ms: u64,
        /// `opened`, `approved`, `rejected` or `withdrawn`.
        pub action: String,
        pub step: String,
        pub organisation: String,
        pub common_name: String,
        pub note: String,
    }
}

const KINDS: Map<String, Vec<Step>> = Map::new("kinds");
const CASES: Map<u64, Case> = Map::new("cases");
const NEXT_CASE: Value<u64> = Value::new("next_case");
const HISTORY: List<Entry> = List::new("history");

const MAX_STEPS: usize = 16;
const MAX_NAME: usize = 64;

fn define(kind: String, steps: Vec<(String, String, String, u64)>) {
    let who = caller();
    ensure!(
        who.role == Role::Admin,
        "only an admin can define a kind of case; the caller is `{}` of `{}`",
        who.role.as_str(),
        who.organisation
    );
    ensure!(
        !kind.is_empty() && kind.len() <= MAX_NAME,
        "a kind's name is 1 to {MAX_NAME} bytes"
    );
    ensure!(!KINDS.contains(&kind), "kind `{kind}` is already defined");
    ensure!(
        !steps.is_empty() && steps.len() <= MAX_STEPS,
        "a kind has 1 to {MAX_STEPS} steps, got {}",
        steps.len()
    );
    let mut defined = Vec::with_capacity(steps.len());
    for (i, (name, organisation, role, blocks)) in steps.into_iter().enumerate() {
        ensure!(
            !name.is_empty() && name.len() <= MAX_NAME,
            "step {i}: a step's name is 1 to {MAX_NAME} bytes"
        );
        ensure!(
            !organisation.is_empty(),
            "step {i} (`{name}`): no organisation"
        );
        ensure!(
            Role::parse(&role).is_some(),
            "step {i} (`{name}`): unknown role `{role}` (admin, user, auditor or node)"
        );
        ensure!(blocks > 0, "step {i} (`{name}`): allows 0 blocks");
        defined.push(Step {
            name,
            organisation,
            role,
            blocks,
        });
    }
    KINDS.set(&kind, &defined);
    gmchain_sdk::emit("kind_defined", &[kind.as_bytes()], &[]);
}

fn open(kind: String, title: String) -> u64 {
    let who = caller();
    ensure!(
        matches!(who.role, Role::Admin | Role::User),
        "only a user or admin can open a case; the caller is `{}` of `{}`",
        who.role.as_str(),
        who.organisation
    );
    let steps = match KINDS.get(&kind) {
        Some(steps) => steps,
        None => abort(&format!("no kind of case `{kind}` is defined")),
    };
    let number = NEXT_CASE.get().unwrap_or(1);
    NEXT_CASE.set(&(number + 1));
    let case = Case {
        kind: kind.clone(),
        title,
        opened_by: who.organisation.clone(),
        state: "open".to_string(),
        step: 0,
        deadline: block_height().saturating_add(steps[0].blocks),
    };
    CASES.set(&number, &case);
    record(number, "opened", "", &who, "");
    gmchain_sdk::emit(
        "case_opened",
        &[&number.to_be_bytes(), kind.as_bytes()],
        &[],
    );
    number
}

/// Returns the case and its current step, after checking that the caller holds it and that
/// the step is not overdue.
fn held(number: u64, who: &Caller, action: &str) -> (Case, Vec<Step>) {
    let case = load(number);
    ensure!(
        case.state == "open",
        "case {number} is {}; it cannot be {action}",
        case.state
    );
    let steps = steps_of(&case.kind);
    let step = &steps[case.step as usize];
    ensure!(
        who.organisation == step.organisation && who.role.as_str() == step.role,
        "step `{}` of case {number} is for role `{}` of `{}`; the caller is `{}` of `{}`",
        step.name,
        step.role,
        step.organisation,
        who.role.as_str(),
        who.organisation
    );
    let now = block_height();
    ensure!(
        now <= case.deadline,
        "step `{}` of case {number} passed its deadline at height {} (now {now})",
        step.name,
        case.deadline
    );
    (case, steps)
}

fn approve(number: u64, note: String) {
    let who = caller();
    let (mut case, steps) = held(number, &who, "approved");
    let step = &steps[case.step as usize];
    record(number, "approved", &step.name, &who, &note);
    gmchain_sdk::emit(
        "step_approved",
        &[&number.to_be_bytes(), step.name.as_bytes()],
        &[],
    );
    case.step += 1;
    if case.step as usize == steps.len() {
        case.state = "completed".to_string();
        gmchain_sdk::emit("case_completed", &[&number.to_be_bytes()], &[]);
    } else {
        case.deadline = block_height().saturating_add(steps[case.step as usize].blocks);
    }
    CASES.set(&number, &case);
}

fn reject(number: u64, reason: String) {
    let who = caller();
    let (mut case, steps) = held(number, &who, "rejected");
    let step = &steps[case.step as usize];
    record(number, "rejected", &step.name, &who, &reason);
    gmchain_sdk::emit(
        "case_rejected",
        &[&number.to_be_bytes(), step.name.as_bytes()],
        &[],
    );
    case.state = "rejected".to_string();
    CASES.set(&number, &case);
}

fn withdraw(number: u64, reason: String) {
    let who = caller();
    let mut case = load(number);
    ensure!(
        who.organisation == case.opened_by && matches!(who.role, Role::Admin | Role::User),
        "only a user or admin of `{}` (which opened case {number}) can withdraw it; the caller is `{}` of `{}`",
        case.opened_by,
        who.role.as_str(),
        who.organisation
    );
    ensure!(
        case.state == "open",
        "case {number} is {}; it cannot be withdrawn",
        case.state
    );
    let steps = steps_of(&case.kind);
    record(
        number,
        "withdrawn",
        &steps[case.step as usize].name,
        &who,
        &reason,
    );
    gmchain_sdk::emit("case_withdrawn", &[&number.to_be_bytes()], &[]);
    case.state = "withdrawn".to_string();
    CASES.set(&number, &case);
}

fn status(number: u64) -> Status {
    let case = load(number);
    let steps = steps_of(&case.kind);
    let open = case.state == "open";
    let current = steps.get(case.step as usize).filter(|_| open);
    Status {
        kind: case.kind,
        title: case.title,
        opened_by: case.opened_by,
        state: case.state,
        step: current.map(|s| s.name.clone()).unwrap_or_default(),
        done: case.step,
        steps: steps.len() as u64,
        organisation: current.map(|s| s.organisation.clone()).unwrap_or_default(),
        role: current.map(|s| s.role.clone()).unwrap_or_default(),
        deadline: if open { case.deadline } else { 0 },
        overdue: open && block_height() > case.deadline,
    }
}

fn history(number: u64) -> Vec<Entry> {
    load(number);
    HISTORY.at(&number).to_vec()
}

fn steps(kind: String) -> Vec<Step> {
    steps_of(&kind)
}

fn load(number: u64) -> Case {
    match CASES.get(&number) {
        Some(case) => case,
        None => abort(&format!("no case {number}")),
    }
}

fn steps_of(kind: &str) -> Vec<Step> {
    match KINDS.get(&kind.to_string()) {
        Some(steps) => steps,
        None => abort(&format!("no kind of case `{kind}` is defined")),
    }
}

fn record(number: u64, action: &str, step: &str, who: &Caller, note: &str) {
    HISTORY.at(&number).push(&Entry {
        height: block_height(),
        time_ms: block_time_ms(),
        action: action.to_string(),
        step: step.to_string(),
        organisation: who.organisation.clone(),
        common_name: who.common_name.clone(),
        note: note.to_string(),
    });
}

gmchain_sdk::contract! {
    fn define(kind: String, steps: Vec<(String, String, String, u64)>);
    fn open(kind: String, title: String) -> u64;
    fn approve(case: u64, note: String);
    fn reject(case: u64, reason: String);
    fn withdraw(case: u64, reason: String);
    fn status(case: u64) -> Status;
    fn history(case: u64) -> Vec<Entry>;
    fn steps(kind: String) -> Vec<Step>;
}

#[cfg(test)]
mod tests {
    use gmchain_sdk::{testing, Arg, Role};

    use super::__gmchain_entry::call;
    use super::{Entry, Status};

    fn run(
        org: &str,
        cn: &str,
        role: Role,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<Vec<u8>, String> {
        testing::set_caller(org, cn, role);
        testing::set_input(method, args);
        testing::run(call).map(|()| testing::take_return().unwrap_or_default())
    }

    fn s(x: &str) -> Vec<u8> {
        x.to_string().encode()
    }

    fn define_permit() {
        let steps: Vec<(String, String, String, u64)> = vec![
            ("intake".into(), "Commerce".into(), "user".into(), 10),
            ("tax check".into(), "Tax".into(), "admin".into(), 5),
            ("licence".into(), "Market".into(), "user".into(), 20),
        ];
        run(
            "Commerce",
            "root",
            Role::Admin,
            "define",
            vec![s("permit"), steps.encode()],
        )
        .unwrap();
    }

    fn status(case: u64) -> Status {
        Status::decode(&run("Audit", "eve", Role::Auditor, "status", vec![case.encode()]).unwrap())
            .unwrap()
    }

    #[test]
    fn a_case_moves_through_three_organisations() {
        testing::reset();
        define_permit();
        testing::set_block(100, 1_000);
        let out = run(
            "Commerce",
            "ann",
            Role::User,
            "open",
            vec![s("permit"), s("shop at No. 1")],
        )
        .unwrap();
        let case = u64::decode(&out).unwrap();
        assert_eq!(case, 1);
        let st = status(case);
        assert_eq!(
            (
                st.state.as_str(),
                st.step.as_str(),
                st.organisation.as_str(),
                st.role.as_str()
            ),
            ("open", "intake", "Commerce", "user")
        );
        assert_eq!(
            (st.deadline, st.done, st.steps, st.overdue),
            (110, 0, 3, false)
        );

        testing::set_block(105, 2_000);
        run(
            "Commerce",
            "ann",
            Role::User,
            "approve",
            vec![case.encode(), s("complete")],
        )
        .unwrap();
        // The wrong organisation, then the right organisation with the wrong role.
        let e = run(
            "Market",
            "bob",
            Role::Admin,
            "approve",
            vec![case.encode(), s("")],
        )
        .unwrap_err();
        assert_eq!(e, "CONTRACT_ABORTED step `tax check` of case 1 is for role `admin` of `Tax`; the caller is `admin` of `Market`");
        let e = run(
            "Tax",
            "tom",
            Role::User,
            "approve",
            vec![case.encode(), s("")],
        )
        .unwrap_err();
        assert!(
            e.contains("is for role `admin` of `Tax`; the caller is `user` of `Tax`"),
            "{e}"
        );
        run(
            "Tax",
            "tina",
            Role::Admin,
            "approve",
            vec![case.encode(), s("paid")],
        )
        .unwrap();
        let st = status(case);
        assert_eq!(
            (st.step.as_str(), st.organisation.as_str(), st.deadline),
            ("licence", "Market", 125)
        );
        testing::set_block(125, 3_000);
        run(
            "Market",
            "max",
            Role::User,
            "approve",
            vec![case.encode(), s("issued")],
        )
        .unwrap();
        let st = status(case);
        assert_eq!(
            (st.state.as_str(), st.step.as_str(), st.done),
            ("completed", "", 3)
        );
        let e = run(
            "Market",
            "max",
            Role::User,
            "approve",
            vec![case.encode(), s("")],
        )
        .unwrap_err();
        assert!(
            e.contains("case 1 is completed; it cannot be approved"),
            "{e}"
        );

        let hist = Vec::<Entry>::decode(
            &run(
                "Audit",
                "eve",
                Role::Auditor,
                "history",
                vec![case.encode()],
            )
            .unwrap(),
        )
        .unwrap();
        let actions: Vec<(&str, &str, &str, u64)> = hist
            .iter()
            .map(|e| {
                (
                    e.action.as_str(),
                    e.step.as_str(),
                    e.common_name.as_str(),
                    e.height,
                )
            })
            .collect();
        assert_eq!(
            actions,
            vec![
                ("opened", "", "ann", 100),
                ("approved", "intake", "ann", 105),
                ("approved", "tax check", "tina", 105),
                ("approved", "licence", "max", 125)
            ]
        );

        let names: Vec<String> = testing::take_events().into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "kind_defined",
                "case_opened",
                "step_approved",
                "step_approved",
                "step_approved",
                "case_completed"
            ]
        );
    }

    #[test]
    fn an_overdue_step_is_refused_and_can_be_withdrawn() {
        testing::reset();
        define_permit();
        testing::set_block(100, 0);
        let case = u64::decode(
            &run(
                "Commerce",
                "ann",
                Role::User,
                "open",
                vec![s("permit"), s("x")],
            )
            .unwrap(),
        )
        .unwrap();
        testing::set_block(111, 0);
        assert!(status(case).overdue);
        let e = run(
            "Commerce",
            "ann",
            Role::User,
            "approve",
            vec![case.encode(), s("")],
        )
        .unwrap_err();
        assert!(
            e.contains("step `intake` of case 1 passed its deadline at height 110 (now 111)"),
            "{e}"
        );
        let e = run(
            "Tax",
            "tina",
            Role::Admin,
            "withdraw",
            vec![case.encode(), s("")],
        )
        .unwrap_err();
        assert!(e.contains("only a user or admin of `Commerce`"), "{e}");
        run(
            "Commerce",
            "ann",
            Role::User,
            "withdraw",
            vec![case.encode(), s("too late")],
        )
        .unwrap();
        assert_eq!(status(case).state, "withdrawn");
    }

    #[test]
    fn a_rejection_closes_the_case() {
        testing::reset();
        define_permit();
        let case = u64::decode(
            &run(
                "Commerce",
                "ann",
                Role::User,
                "open",
                vec![s("permit"), s("x")],
            )
            .unwrap(),
        )
        .unwrap();
        run(
            "Commerce",
            "ann",
            Role::User,
            "reject",
            vec![case.encode(), s("incomplete")],
        )
        .unwrap();
        assert_eq!(status(case).state, "rejected");
    }

    #[test]
    fn definitions_are_checked() {
        testing::reset();
        let bad_role: Vec<(String, String, String, u64)> =
            vec![("a".into(), "Tax".into(), "boss".into(), 1)];
        let e = run(
            "Tax",
            "t",
            Role::Admin,
            "define",
            vec![s("k"), bad_role.encode()],
        )
        .unwrap_err();
        assert!(e.contains("step 0 (`a`): unknown role `boss`"), "{e}");
        let e = run(
            "Tax",
            "t",
            Role::User,
            "define",
            vec![s("k"), Vec::<(String, String, String, u64)>::new().encode()],
        )
        .unwrap_err();
        assert!(e.contains("only an admin can define"), "{e}");
        define_permit();
        let e = run(
            "Tax",
            "t",
            Role::Admin,
            "define",
            vec![
                s("permit"),
                vec![("a".to_string(), "Tax".to_string(), "user".to_string(), 1u64)].encode(),
            ],
        )
        .unwrap_err();
        assert!(e.contains("kind `permit` is already defined"), "{e}");
        let e = run("Tax", "t", Role::User, "open", vec![s("visa"), s("x")]).unwrap_err();
        assert!(e.contains("no kind of case `visa` is defined"), "{e}");
        let e = run("Tax", "t", Role::User, "status", vec![9u64.encode()]).unwrap_err();
        assert!(e.contains("no case 9"), "{e}");
    }
}
