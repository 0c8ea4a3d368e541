"""The page's words in English and Chinese, and how a language map is shown in one language."""

from __future__ import annotations

LANGS = ("en", "zh")

LABELS = {
    "en": {
        "title": "Alliance course catalog", "skip": "Skip to results", "search": "Search courses",
        "search_button": "Search", "filters": "Filters", "any": "Any", "school": "School",
        "programme": "Programme", "language": "Teaching language", "delivery": "Delivery",
        "credits": "Credits", "credits_min": "Credits from", "credits_max": "Credits up to", "term": "Term",
        "eqf_level": "EQF level", "isced_f": "ISCED-F field", "sort": "Sort by", "results": "{n} courses", "results_one": "1 course",
        "no_results": "No course matches. Try fewer words or filters.", "next": "Next page",
        "own": "Our school", "partner": "Partner school", "languages": "Languages", "code": "Code",
        "hours": "Contact hours", "description": "Description", "outcomes": "Learning outcomes",
        "prerequisites": "Prerequisites", "offerings": "Offerings", "starts": "Starts", "ends": "Ends",
        "places": "Places", "instructors": "Instructors", "no_instructors": "No instructor profile is shared yet.",
        "visits": "Upcoming teaching-team visits", "no_visits": "No upcoming visit.", "place": "Place",
        "dates": "Dates", "slots": "Exchange slots", "no_slots": "No exchange slot.", "add_to_calendar": "Add to calendar (.ics)",
        "places_left": "{n} places left", "place_left": "1 place left", "full": "Full", "unknown_places": "{n} places", "back": "Back to the search",
        "switch": "中文", "switch_label": "Language", "expertise": "Expertise", "clear": "Clear filters",
        "language_en": "English", "language_zh": "Chinese", "sort_code": "Code", "sort_title": "Title",
        "sort_credits": "Credits (low to high)", "sort_-credits": "Credits (high to low)",
        "sort_school": "School", "sort_-updated": "Recently updated", "apply": "Apply filters",
        "in_person": "In person", "online": "Online", "hybrid": "Hybrid", "not_found": "Course not found",
        "guest_lecture": "Guest lecture", "co_teaching": "Co-teaching", "workshop": "Workshop",
        "seminar": "Seminar", "footer": "Courses shared by the schools of the alliance.",
    },
    "zh": {
        "title": "联盟课程目录", "skip": "跳到搜索结果", "search": "搜索课程", "search_button": "搜索",
        "filters": "筛选", "any": "全部", "school": "学校", "programme": "项目", "language": "授课语言",
        "delivery": "授课方式", "credits": "学分", "credits_min": "最低学分", "credits_max": "最高学分",
        "term": "学期", "eqf_level": "EQF 级别", "isced_f": "ISCED-F 领域", "sort": "排序",
        "results": "共 {n} 门课程", "results_one": "共 1 门课程", "no_results": "没有符合条件的课程。请减少关键词或筛选条件。", "next": "下一页",
        "own": "本校", "partner": "合作院校", "languages": "语言", "code": "课程代码", "hours": "学时",
        "description": "课程简介", "outcomes": "学习成果", "prerequisites": "先修要求", "offerings": "开课安排",
        "starts": "开始", "ends": "结束", "places": "名额", "instructors": "授课教师",
        "no_instructors": "暂无共享的教师简介。", "visits": "即将到来的教学团队互访", "no_visits": "暂无即将到来的互访。",
        "place": "地点", "dates": "日期", "slots": "交流时段", "no_slots": "暂无交流时段。", "add_to_calendar": "添加到日历（.ics）",
        "places_left": "剩余 {n} 个名额", "place_left": "剩余 1 个名额", "full": "已满", "unknown_places": "共 {n} 个名额", "back": "返回搜索", "switch": "English",
        "switch_label": "语言", "expertise": "研究专长", "clear": "清除筛选", "language_en": "英语",
        "language_zh": "中文", "sort_code": "课程代码", "sort_title": "课程名称", "sort_credits": "学分（从低到高）",
        "sort_-credits": "学分（从高到低）", "sort_school": "学校", "sort_-updated": "最近更新", "apply": "应用筛选",
        "in_person": "线下面授", "online": "线上", "hybrid": "混合式", "not_found": "未找到该课程",
        "guest_lecture": "客座讲座", "co_teaching": "合作授课", "workshop": "工作坊", "seminar": "研讨会",
        "footer": "联盟各院校共享的课程。",
    },
}


def pick_lang(value: str | None) -> str:
    return value if value in LANGS else "en"


def text(value, lang: str) -> str:
    """The text of a language map in `lang`, else English, else any language."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    for key in (lang, "zh-Hans" if lang == "zh" else lang, "en"):
        if value.get(key):
            return value[key]
    return next(iter(value.values()), "")


def label(lang: str, key: str, **values) -> str:
    words = LABELS[pick_lang(lang)]
    return words.get(key, LABELS["en"].get(key, key)).format(**values)


def places(lang: str, left: int | None, capacity: int | None) -> str:
    """How full a slot is, in words: "3 places left", "1 place left", "Full"; its size when the host does not say."""
    if left is None:
        return label(lang, "unknown_places", n=capacity if capacity is not None else "?")
    if left == 0:
        return label(lang, "full")
    if left == 1:
        return label(lang, "place_left")
    return label(lang, "places_left", n=left)


def value_label(lang: str, value) -> str:
    """A coded value (delivery mode, slot kind, language tag) in words, when the page knows it."""
    key = f"language_{value}" if value in ("en", "zh") else str(value)
    return LABELS[pick_lang(lang)].get(key, str(value).replace("_", " "))
