//! Messages shown to the person at the door and returned in API answers: Korean by
//! default (the spec's language), English by configuration or `Accept-Language`.

use serde::{Deserialize, Serialize};

use crate::reason::{QualityIssue, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    Ko,
    En,
}

/// The terminal's default locale, shared so SIGHUP can change it while the HTTP server
/// and the camera overlay run.
#[derive(Debug, Clone, Default)]
pub struct SharedLocale(std::sync::Arc<std::sync::RwLock<Locale>>);

impl SharedLocale {
    pub fn new(l: Locale) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(l)))
    }

    pub fn get(&self) -> Locale {
        *self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, l: Locale) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = l;
    }
}

impl Locale {
    /// Picks a locale from an `Accept-Language` header, if it names one we speak.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        header
            .split(',')
            .map(|part| {
                part.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .find_map(|tag| match tag.split('-').next() {
                Some("ko") => Some(Locale::Ko),
                Some("en") => Some(Locale::En),
                _ => None,
            })
    }
}

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Reason(Reason),
    Quality(QualityIssue),
    /// Identified and punched.
    Recognised,
    /// Identified; the same punch was already recorded moments ago.
    DuplicatePunch,
    Enrolled,
    Punched,
    UserDeleted,
    /// A person's learned templates erased (`DELETE /users/{id}/learned`).
    LearnedForgotten,
    UsersReset,
    /// Live guidance: face is centred, sharp and close enough.
    Ready,
    /// Live guidance: nobody recognised yet, walk-up is still trying.
    Trying,
    /// 1:N could not tell the face from a colleague's: enter the employee id.
    Ambiguous,
}

impl Locale {
    /// The message for `msg` in this locale.
    pub fn text(self, msg: Msg) -> &'static str {
        let (ko, en) = texts(msg);
        match self {
            Locale::Ko => ko,
            Locale::En => en,
        }
    }

    /// The JSON body of a refused request, the same for every listener of both processes:
    /// `{"success": false, "reason", "message"}`, the message localised, `detail` appended.
    pub fn refusal(self, reason: Reason, detail: Option<&str>) -> serde_json::Value {
        let mut message = self.text(Msg::Reason(reason)).to_owned();
        if let Some(d) = detail {
            message = format!("{message} ({d})");
        }
        serde_json::json!({ "success": false, "reason": reason, "message": message })
    }
}

fn texts(msg: Msg) -> (&'static str, &'static str) {
    use QualityIssue as Q;
    use Reason as R;
    match msg {
        Msg::Reason(R::NoFace) => (
            "얼굴이 감지되지 않았습니다. 정면을 바라봐 주세요",
            "No face found. Please look straight at the camera",
        ),
        Msg::Reason(R::MultiFace) => (
            "여러 얼굴이 감지되었습니다. 한 명씩 인증해 주세요",
            "Several faces found. One person at a time, please",
        ),
        Msg::Reason(R::OutOfArea) => (
            "가이드 영역 안에서 인증해주세요",
            "Please centre your face in the guide",
        ),
        Msg::Reason(R::BadQuality) => (
            "이미지 품질이 좋지 않습니다. 다시 시도해 주세요",
            "Image quality too low. Please try again",
        ),
        Msg::Reason(R::Unknown) => ("등록되지 않은 얼굴입니다", "Face not recognised"),
        Msg::Reason(R::CameraUnavailable) => ("카메라를 사용할 수 없습니다", "Camera unavailable"),
        Msg::Reason(R::InternalError) => ("서버 내부 오류가 발생했습니다", "Internal server error"),
        Msg::Reason(R::BadImage) => (
            "이미지를 읽을 수 없습니다 (JPEG/PNG/BMP, 최대 크기 초과 여부를 확인해 주세요)",
            "Cannot read the image (JPEG/PNG/BMP within the size limits)",
        ),
        Msg::Reason(R::AlreadyEnrolled) => {
            ("이미 등록된 얼굴입니다", "This face is already enrolled")
        }
        Msg::Reason(R::UserNotFound) => ("사용자를 찾을 수 없습니다", "No such user"),
        Msg::Reason(R::InvalidField) => ("요청 값이 올바르지 않습니다", "Invalid request field"),
        Msg::Reason(R::UnsupportedMediaType) => {
            ("지원하지 않는 요청 형식입니다", "Unsupported content type")
        }
        Msg::Reason(R::PayloadTooLarge) => ("요청 크기가 너무 큽니다", "Request body too large"),
        Msg::Reason(R::NotFound) => ("없는 경로입니다", "No such endpoint"),
        Msg::Reason(R::MethodNotAllowed) => ("허용되지 않는 메서드입니다", "Method not allowed"),
        Msg::Reason(R::Unauthorized) => ("인증이 필요합니다", "Authentication required"),
        Msg::Reason(R::Forbidden) => ("권한이 없습니다", "Not allowed for this key"),
        Msg::Reason(R::Busy) => (
            "요청이 많습니다. 잠시 후 다시 시도해 주세요",
            "Busy, please retry shortly",
        ),
        Msg::Reason(R::Timeout) => ("요청 시간이 초과되었습니다", "Request timed out"),
        Msg::Reason(R::StorageFull) => ("저장 공간이 부족합니다", "Storage is full"),
        Msg::Reason(R::NotVerified) => (
            "입력한 사번과 얼굴이 일치하지 않습니다",
            "Your face does not match the employee ID entered",
        ),
        Msg::Reason(R::TooManyAttempts) => (
            "인증 실패가 많아 잠시 후 다시 시도해 주세요",
            "Too many failed attempts. Please try again later",
        ),
        Msg::Reason(R::VerifyRequired) => (
            "사번을 입력한 뒤 얼굴 인증을 해 주세요",
            "Please enter your employee ID, then look at the camera",
        ),
        Msg::Reason(R::NotLive) => (
            "사진이 아닌 실제 얼굴이 필요합니다. 고개를 천천히 좌우로 돌려 주세요",
            "A live face is needed: please turn your head slowly left and right",
        ),
        Msg::Quality(Q::TooSmall) => ("조금 더 가까이 와 주세요", "Please come a little closer"),
        Msg::Quality(Q::TooClose) => ("조금 뒤로 물러나 주세요", "Please step back a little"),
        Msg::Quality(Q::TooDark) => (
            "너무 어둡습니다. 밝은 곳에서 시도해 주세요",
            "Too dark. Please find better light",
        ),
        Msg::Quality(Q::TooBright) => (
            "너무 밝습니다. 역광을 피해 주세요",
            "Too bright. Please avoid strong backlight",
        ),
        Msg::Quality(Q::Blurred) => (
            "흔들렸습니다. 잠시 멈춰 주세요",
            "Blurred. Please hold still",
        ),
        Msg::Recognised => ("인증 성공", "Recognised"),
        Msg::DuplicatePunch => ("이미 기록되었습니다", "Already recorded"),
        Msg::Enrolled => ("등록 완료", "Enrolled"),
        Msg::Punched => ("출퇴근 기록이 저장되었습니다", "Attendance recorded"),
        Msg::UserDeleted => ("사용자가 삭제되었습니다", "User deleted"),
        Msg::LearnedForgotten => (
            "학습된 얼굴이 삭제되었습니다. 등록 사진은 유지됩니다",
            "Learned faces erased; the enrolment stays",
        ),
        Msg::UsersReset => ("모든 사용자가 삭제되었습니다", "All users deleted"),
        Msg::Ready => ("인식 준비 완료", "Ready"),
        Msg::Trying => (
            "확인 중입니다. 카메라를 바라봐 주세요",
            "Checking. Please look at the camera",
        ),
        Msg::Ambiguous => (
            "비슷한 얼굴이 있어 구분할 수 없습니다. 사번을 입력해 주세요",
            "Too close to another person to tell apart. Please enter your employee ID",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_and_issue_has_both_languages() {
        let msgs = Reason::iter()
            .map(Msg::Reason)
            .chain(QualityIssue::iter().map(Msg::Quality));
        for m in msgs {
            let (ko, en) = (Locale::Ko.text(m), Locale::En.text(m));
            assert!(
                ko.chars().any(|c| ('가'..='힣').contains(&c)),
                "{m:?}: {ko}"
            );
            assert!(en.is_ascii() && !en.is_empty(), "{m:?}: {en}");
        }
    }

    #[test]
    fn accept_language() {
        assert_eq!(
            Locale::from_accept_language("en-US,en;q=0.9"),
            Some(Locale::En)
        );
        assert_eq!(Locale::from_accept_language("ko-KR"), Some(Locale::Ko));
        assert_eq!(
            Locale::from_accept_language("fr, en;q=0.5"),
            Some(Locale::En)
        );
        assert_eq!(Locale::from_accept_language("de"), None);
    }
}
