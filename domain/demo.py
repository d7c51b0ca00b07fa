"""A deterministic demo company, seeded entirely through the domain services.

星联科技 (Xinglian Tech) sells industrial software and data platforms in two regions, 华东 (east)
and 华南 (south). The seed tells about five months of its life: leads arrive from every channel
and are worked, qualified, disqualified or converted; deals are staffed with their iron triangle
(AR / SR / FR) and walk through the real decision gates (ATI, solution review, ATB, ATC), some
passing, some rejected with comments, some still waiting for a decision; a few are lost or
abandoned with a reason. Because every write is a service call, audit rows and outbox events
exist exactly as if people had done the work.

Determinism: one clock we control (business days from `start`, moved forward step by step),
request ids from a counter, no randomness. Two seeds of two empty databases are identical.

    seed_demo(uow_factory)   # uow_factory(clock=...) -> a unit of work using that clock

Idempotent: on a database that already holds the demo it writes nothing and says so.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.actor import Actor, Channel
from domain.errors import Conflict
from domain.model.quotes import Quote
from domain.policy_defaults import SYSTEM_EMAIL, seed_policies
from domain.services import catalog as catalog_svc
from domain.services import accounts as account_svc
from domain.services import activities as activity_svc
from domain.services import approvals as approval_svc
from domain.services import leads as lead_svc
from domain.services import opportunities as opp_svc
from domain.services import users as user_svc
from domain.services import collections as collection_svc
from domain.services import contracts as contract_svc
from domain.services import delivery as delivery_svc
from domain.services import payments as payment_svc
from domain.services import quotes as quote_svc
from domain.services.schemas import View

DEMO_START = datetime(2026, 6, 1, 9, 0)
DOMAIN = "xinglian.example"
# The first demo user; its presence means "the demo is here".
MARKER_EMAIL = f"chen.zhiyuan@{DOMAIN}"
# Open demo requests must outlive the story's own calendar, or the first expiry sweep would
# close them before anyone looked at the demo.
OPEN_REQUEST_TTL_HOURS = 24 * 180

EXPECTED = {"users": 15, "leads": 40, "accounts": 25, "opportunities": 30}


class DemoSummary(View):
    created: bool
    message: str
    users: int
    users_by_role: dict[str, int]
    teams: int
    leads: int
    leads_by_status: dict[str, int]
    accounts: int
    contacts: int
    opportunities: int
    opportunities_by_stage: dict[str, int]
    approvals: int
    approvals_by_status: dict[str, int]
    activities: int
    audit_rows: int
    outbox_events: int
    contracts: int = 0
    contracts_by_status: dict[str, int] = {}
    invoices: int = 0
    invoices_by_status: dict[str, int] = {}
    payments: int = 0
    story_ends_at: datetime | None = None


# ---------------------------------------------------------------------------------------------
# The company: people, teams, routing rules.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonSpec:
    key: str
    email: str
    name_en: str
    name_zh: str
    locale: str
    region: str
    role: str
    manager: str | None = None
    team: str | None = None
    slack: str | None = None
    wecom: str | None = None


PEOPLE: tuple[PersonSpec, ...] = (
    PersonSpec("director", "chen.zhiyuan", "Chen Zhiyuan", "陈志远", "zh", "east", "director", wecom="ChenZhiYuan"),
    PersonSpec("sm_east", "wang.haitao", "Wang Haitao", "王海涛", "zh", "east", "sales_manager", "director", "east",
               wecom="WangHaiTao"),
    PersonSpec("sm_south", "linda.huang", "Linda Huang", "黄琳", "en", "south", "sales_manager", "director", "south",
               slack="U07XLDEMO01"),
    PersonSpec("li", "li.na", "Li Na", "李娜", "zh", "east", "sales_rep", "sm_east", "east", wecom="LiNa"),
    PersonSpec("tom", "tom.becker", "Tom Becker", "贝克", "en", "east", "sales_rep", "sm_east", "east",
               slack="U07XLDEMO02"),
    PersonSpec("liu", "liu.yang", "Liu Yang", "刘洋", "zh", "south", "sales_rep", "sm_south", "south", wecom="LiuYang"),
    PersonSpec("emily", "emily.zhou", "Emily Zhou", "周雪", "en", "south", "sales_rep", "sm_south", "south",
               slack="U07XLDEMO03"),
    PersonSpec("sr_zhou", "zhou.min", "Zhou Min", "周敏", "zh", "east", "solution_manager", "director", wecom="ZhouMin"),
    PersonSpec("sr_david", "david.wu", "David Wu", "吴大卫", "en", "south", "solution_manager", "director",
               slack="U07XLDEMO04"),
    PersonSpec("fr_sun", "sun.lei", "Sun Lei", "孙磊", "zh", "east", "fulfillment_manager", "director", wecom="SunLei"),
    PersonSpec("fr_zhao", "zhao.jing", "Zhao Jing", "赵静", "zh", "south", "fulfillment_manager", "director"),
    PersonSpec("finance", "qian.fang", "Qian Fang", "钱芳", "zh", "east", "finance", wecom="QianFang"),
    PersonSpec("legal", "grace.lin", "Grace Lin", "林雅", "en", "south", "legal", slack="U07XLDEMO05"),
    PersonSpec("ops", "zheng.kai", "Zheng Kai", "郑凯", "zh", "east", "sales_ops", wecom="ZhengKai"),
    PersonSpec("admin", "he.ming", "He Ming", "何明", "en", "east", "admin"),
)

TEAMS = {"east": ("华东销售部 East Sales", "east", "sm_east"), "south": ("华南销售部 South Sales", "south", "sm_south")}
# priority, team, region, cap of open leads per rep. Leads from other regions fall to the east team.
RULES = ((1, "east", "east", 12), (2, "south", "south", 12), (9, "east", "*", 30))
MANAGER_OF = {p.key: p.manager for p in PEOPLE}
REGION_SR = {"east": "sr_zhou", "south": "sr_david"}
REGION_FR = {"east": "fr_sun", "south": "fr_zhao"}


# ---------------------------------------------------------------------------------------------
# Customers, the leads some of them came from, and their decision chains.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeadSpec:
    source: str
    contact: str
    title: str
    email: str | None
    need: str
    budget: str | None
    timeline: str
    authority: str
    by: str = "rep"  # "rep": the owner typed it in; "ops": sales ops captured it for the owner


@dataclass(frozen=True)
class AccountSpec:
    key: str
    name: str
    industry: str
    region: str
    tier: str
    owner: str
    # Extra contacts (the lead's contact comes first when the account came from a lead):
    # name, title, decision role, relationship 1-5, email
    contacts: tuple[tuple[str, str, str, int, str | None], ...] = ()
    lead: LeadSpec | None = None


ACCOUNTS: tuple[AccountSpec, ...] = (
    # ---- 华东 east ----
    AccountSpec("hdjm", "华东精密机械股份有限公司", "manufacturing", "east", "strategic", "li",
                (("周建国", "总经理", "decision_maker", 4, None),
                 ("钱晓东", "生产总监", "influencer", 3, "qian.xd@hdjm.example"),
                 ("吴海燕", "采购经理", "gatekeeper", 2, None)),
                LeadSpec("referral", "张伟", "信息中心主任", "zhang.wei@hdjm.example",
                         "总装车间 MES 二期：工单、质量追溯和设备联网打通，替换现有纸质流转", "4000000",
                         "within_3_months", "influencer")),
    AccountSpec("hengli", "苏州恒远新能源有限公司", "energy", "east", "key", "li",
                (("顾明", "副总裁", "decision_maker", 3, None),
                 ("沈琦", "运维主管", "user", 4, None)),
                LeadSpec("trade_show", "陆一鸣", "储能事业部技术总监", "lu.ym@hengyuan-ne.example",
                         "三座储能电站的能量管理系统（EMS），要求与电网调度对接并支持峰谷套利策略", "5500000",
                         "within_6_months", "influencer")),
    AccountSpec("youxuan", "上海优选零售连锁有限公司", "retail", "east", "key", "tom",
                (("Kevin Xu", "CIO", "decision_maker", 2, "kevin.xu@youxuan.example"),
                 ("黄蕾", "会员运营总监", "influencer", 3, None),
                 ("马骏", "IT 架构师", "technical_evaluator", 3, None)),
                LeadSpec("website", "曹磊", "数字化项目经理", "cao.lei@youxuan.example",
                         "Omni-channel membership and inventory middle platform for 320 stores", "2500000",
                         "within_6_months", "user", by="ops")),
    AccountSpec("zshh", "浙商汇通银行", "finance", "east", "strategic", "tom",
                (("应国华", "副行长", "decision_maker", 3, None),
                 ("Iris Fang", "Head of Credit Operations", "influencer", 4, "iris.fang@zshh.example"),
                 ("胡斌", "科技部架构师", "technical_evaluator", 2, None),
                 ("邵敏", "行长办公室主任", "gatekeeper", 2, None))),
    AccountSpec("renhe", "杭州仁和医院", "healthcare", "east", "key", "li",
                (("徐卫东", "院长", "decision_maker", 2, None),
                 ("杨洁", "医务处处长", "user", 3, None)),
                LeadSpec("partner", "方志强", "信息科科长", "fang.zq@renhe-hosp.example",
                         "医院运营数据平台：床位、手术室和耗材的运营指标一体化，满足等级评审要求", "1800000",
                         "within_6_months", "influencer")),
    AccountSpec("ganglian", "宁波港联物流有限公司", "logistics", "east", "standard", "tom",
                (("叶振宇", "车队经理", "user", 3, None),),
                LeadSpec("ad", "孔德明", "运营副总", "kong.dm@ganglian.example",
                         "港区集卡车队调度和司机排班系统", "1000000", "within_3_months", "decision_maker",
                         by="ops")),
    AccountSpec("weilai", "南京未来教育集团", "education", "east", "standard", "li",
                (("谢文静", "信息化办公室主任", "technical_evaluator", 2, None),),
                LeadSpec("social", "蒋涛", "后勤集团副总", "jiang.tao@weilai-edu.example",
                         "智慧校园一卡通升级，覆盖 6 个校区的门禁、消费和宿舍", "500000",
                         "within_12_months", "influencer")),
    AccountSpec("kessler", "Kessler Automotive (Shanghai) Co., Ltd.", "manufacturing", "east", "key", "tom",
                (("Markus Weber", "Plant Director", "decision_maker", 4, "markus.weber@kessler-auto.example"),
                 ("Anna Schmidt", "Quality Manager", "influencer", 3, "anna.schmidt@kessler-auto.example"),
                 ("孙立", "IT Manager", "technical_evaluator", 3, "sun.li@kessler-auto.example"),
                 ("Julia Chen", "Purchasing Lead", "gatekeeper", 2, "julia.chen@kessler-auto.example"))),
    AccountSpec("guanggu", "合肥光谷半导体有限公司", "manufacturing", "east", "standard", "li",
                (("潘志刚", "厂务部经理", "user", 3, None),
                 ("袁博", "CTO", "decision_maker", 2, None)),
                LeadSpec("website", "刘畅", "厂务工程师", "liu.chang@ggsemi.example",
                         "洁净室温湿度、压差和颗粒数在线监控与告警", "1300000", "within_6_months", "user",
                         by="ops")),
    AccountSpec("lvdian", "无锡绿电储能科技有限公司", "energy", "east", "standard", "tom",
                (("冯建", "技术副总", "technical_evaluator", 2, None),),
                LeadSpec("trade_show", "邱少华", "总经理", "qiu.sh@lvdian.example",
                         "光储充一体化电站监控平台，先做两个示范站", "2200000", "within_6_months",
                         "decision_maker")),
    AccountSpec("tianheng", "江苏天衡保险股份有限公司", "finance", "east", "key", "li",
                (("唐国强", "首席信息官", "decision_maker", 3, None),
                 ("魏莉", "理赔部总经理", "influencer", 4, None),
                 ("郭峰", "数据科学负责人", "technical_evaluator", 3, None)),
                LeadSpec("referral", "汪洋", "理赔运营经理", "wang.yang@tianheng-ins.example",
                         "车险理赔影像识别：定损照片自动分类、风险评分并对接核心理赔系统", "3200000",
                         "within_3_months", "user")),
    AccountSpec("kangtai", "常州康泰医疗器械有限公司", "healthcare", "east", "standard", "tom",
                (("陶红", "质量负责人", "influencer", 3, None),),
                LeadSpec("other", "吕强", "IT 经理", "lv.qiang@kangtai-med.example",
                         "UDI traceability for class II devices ahead of the regulator's deadline", "750000",
                         "within_6_months", "decision_maker")),
    AccountSpec("shencheng", "上海申城轨道交通运营有限公司", "public transport", "east", "strategic", "li",
                (("林国栋", "副总经理", "decision_maker", 4, None),
                 ("贺明", "车辆部部长", "influencer", 4, None),
                 ("丁一", "信息中心工程师", "technical_evaluator", 3, None),
                 ("宋佳", "招标办主任", "gatekeeper", 2, None))),
    # ---- 华南 south ----
    AccountSpec("yuehai", "广州粤丰制造集团有限公司", "manufacturing", "south", "strategic", "liu",
                (("陈宏", "集团 CIO", "decision_maker", 4, None),
                 ("李振华", "供应链副总裁", "influencer", 3, None),
                 ("梁静", "IT 架构经理", "technical_evaluator", 4, None)),
                LeadSpec("referral", "何志明", "供应链数字化总监", "he.zm@yuefeng-group.example",
                         "集团级供应链协同平台：12 家工厂的采购、库存和供应商门户统一", "10000000",
                         "within_3_months", "influencer")),
    AccountSpec("pengcheng", "深圳鹏城智能电网有限公司", "energy", "south", "key", "emily",
                (("罗伟", "总工程师", "decision_maker", 3, None),
                 ("Vivian Lam", "PMO Lead", "gatekeeper", 3, "vivian.lam@pcgrid.example")),
                LeadSpec("partner", "黄志伟", "配网自动化部经理", "huang.zw@pcgrid.example",
                         "配网故障定位与抢修调度：故障研判、工单派发和抢修车辆实时跟踪", "4500000",
                         "within_6_months", "influencer")),
    AccountSpec("meiju", "佛山美居家居零售有限公司", "retail", "south", "standard", "liu",
                (),
                LeadSpec("website", "区家豪", "门店运营经理", "au.jh@meiju.example",
                         "门店数字化导购和客户跟进工具", "400000", "within_12_months", "user", by="ops")),
    AccountSpec("rongxin", "深圳前海融信证券有限公司", "finance", "south", "key", "emily",
                (("Raymond Ho", "Chief Compliance Officer", "decision_maker", 3, "raymond.ho@rongxin-sec.example"),
                 ("邓凯", "经纪业务部总经理", "influencer", 3, None),
                 ("曾思远", "信息技术部总监", "technical_evaluator", 2, None))),
    AccountSpec("hnwl", "东莞华南物流园有限公司", "logistics", "south", "standard", "liu",
                (("莫家乐", "仓储经理", "user", 4, None),
                 ("钟华", "总经理", "decision_maker", 2, None)),
                LeadSpec("trade_show", "卢振东", "运营总监", "lu.zd@hnwlp.example",
                         "园区 WMS 升级与月台预约，解决高峰期排队", "1200000", "within_3_months", "influencer")),
    AccountSpec("ludao", "厦门鹭岛医疗集团", "healthcare", "south", "key", "emily",
                (("陈志华", "集团副总裁", "decision_maker", 4, None),
                 ("Dr. Grace Su", "Director of Radiology", "influencer", 4, "grace.su@ludao-health.example"),
                 ("王敏", "信息部经理", "technical_evaluator", 3, None)),
                LeadSpec("referral", "许文斌", "互联网医院办公室主任", "xu.wb@ludao-health.example",
                         "Internet hospital platform: online consultation, e-prescription and home delivery",
                         "2800000", "within_3_months", "decision_maker")),
    AccountSpec("haian", "珠海海岸职业技术学院", "education", "south", "standard", "liu",
                (("潘立", "实训中心主任", "user", 3, None),),
                LeadSpec("social", "苏晓", "教务处副处长", "su.xiao@haian-college.example",
                         "实训中心数字孪生教学平台", "900000", "within_12_months", "influencer")),
    AccountSpec("pacific", "Pacific Harbour Logistics (HK) Ltd", "logistics", "south", "key", "emily",
                (("Peter Leung", "Managing Director", "decision_maker", 2, "peter.leung@pacharbour.example"),
                 ("Karen Wong", "Customs Compliance Manager", "user", 3, "karen.wong@pacharbour.example")),
                LeadSpec("ad", "Daniel Cheung", "Head of IT", "daniel.cheung@pacharbour.example",
                         "Cross-border customs data hub linking Shenzhen and Hong Kong declarations", "3300000",
                         "within_6_months", "influencer", by="ops")),
    AccountSpec("dongmeng", "南宁东盟商贸有限公司", "trade", "south", "standard", "liu",
                (("韦志刚", "总经理", "decision_maker", 3, None),
                 ("黄丽", "电商运营主管", "user", 3, None))),
    AccountSpec("lanhai", "深圳蓝海电子科技有限公司", "electronics", "south", "key", "emily",
                (("Jason Lin", "VP Operations", "decision_maker", 3, "jason.lin@lanhai-elec.example"),
                 ("彭涛", "工艺工程经理", "technical_evaluator", 4, None),
                 ("甘露", "采购部经理", "gatekeeper", 2, None)),
                LeadSpec("website", "谭志勇", "SMT 车间主任", "tan.zy@lanhai-elec.example",
                         "SMT 产线良率分析：AOI/SPI 数据汇聚、缺陷根因分析", "1700000", "within_6_months",
                         "user", by="ops")),
    AccountSpec("yefeng", "海口椰风酒店管理集团", "hospitality", "south", "standard", "liu",
                (("符海燕", "市场副总裁", "decision_maker", 3, None),
                 ("王俊", "IT 主管", "technical_evaluator", 2, None))),
    AccountSpec("chaoshang", "汕头潮商食品有限公司", "food", "south", "standard", "liu",
                (("郑楚雄", "董事长", "decision_maker", 2, None),
                 ("蔡娜", "品控经理", "influencer", 4, None)),
                LeadSpec("other", "林浩", "生产副总", "lin.hao@chaoshang-food.example",
                         "食品安全追溯：原料批次到成品出厂的全程追溯", "700000", "within_6_months", "influencer")),
)
ACCOUNT_BY_KEY = {a.key: a for a in ACCOUNTS}


# ---------------------------------------------------------------------------------------------
# Deals and the story each one tells (how far it got through the gates).
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DealSpec:
    key: str
    account: str
    name: str
    amount: str
    plan: str
    day: int  # business day (from the story's start) the deal begins
    currency: str = "CNY"
    need: str | None = None  # deals not born from a lead carry their own need
    competitors: tuple[str, ...] = ()
    sr: str | None = None
    fr: str | None = None
    reason: str | None = None  # close reason or rejection comment, when the plan needs one


PLANS = {
    "won", "won_ati_retry",
    "negotiate", "negotiate_signed", "negotiate_atc_pending",
    "bid",
    "solution", "solution_atb_pending2", "solution_atb_rejected", "solution_no_quote",
    "initiated", "initiated_sr_pending", "initiated_no_plan",
    "qualify", "qualify_ati_pending", "qualify_ati_rejected", "qualify_no_fr",
    "lost@bid", "lost@solution", "lost@negotiate_cancel", "abandoned@initiated", "abandoned@qualify",
}

DEALS: tuple[DealSpec, ...] = (
    DealSpec("hdjm_mes", "hdjm", "华东精密 MES 二期（总装车间）", "3800000", "won", 0,
             competitors=("蓝鲸工业软件",)),
    DealSpec("yuehai_scm", "yuehai", "粤丰集团供应链协同平台", "9800000", "won", 2,
             competitors=("Northwind Systems", "天衡数科")),
    DealSpec("kessler_qa", "kessler", "Kessler paint shop quality analytics", "420000", "won_ati_retry", 5,
             currency="USD", need="Inline paint defect analytics for the Anting paint shop, 2 lines",
             competitors=("Northwind Systems",), reason="客户预算未经财务确认，请先拿到预算批复再立项"),
    DealSpec("shencheng_depot", "shencheng", "申城地铁车辆段检修管理系统", "6400000", "won", 8,
             need="车辆段检修计划、工单与备件管理，覆盖 3 个车辆段", competitors=("轨交云科",)),
    DealSpec("zshh_bot", "zshh", "浙商汇通分行智能客服", "1200000", "lost@bid", 10,
             need="分行智能客服与坐席辅助，先覆盖信用卡业务", competitors=("Skyline AI",),
             reason="Lost on price: competitor bid 28% lower with a 3-year bundle"),
    DealSpec("ludao_ih", "ludao", "鹭岛医疗互联网医院平台", "2600000", "won", 12),
    DealSpec("pacific_customs", "pacific", "Pacific Harbour customs data hub", "3300000",
             "lost@negotiate_cancel", 20, currency="HKD", competitors=("HarbourSoft",),
             reason="Customer chose to extend its incumbent vendor; payment terms (40% upfront) refused"),
    DealSpec("ganglian_fleet", "ganglian", "港联物流港区车队调度", "980000", "abandoned@initiated", 25,
             reason="客户并入集团统一采购，本项目取消"),
    DealSpec("hengli_ems", "hengli", "恒远新能源储能电站 EMS", "5200000", "negotiate_atc_pending", 30,
             competitors=("蓝鲸工业软件", "Voltium")),
    DealSpec("lvdian_pv", "lvdian", "绿电储能光储充监控平台", "2100000", "lost@solution", 35,
             reason="技术路线不匹配：客户坚持私有化边缘部署，我方方案以云端为主"),
    DealSpec("pengcheng_fault", "pengcheng", "鹏城电网配网故障定位与抢修调度", "4200000", "negotiate_signed", 35),
    DealSpec("tianheng_claims", "tianheng", "天衡保险理赔影像识别", "3100000", "bid", 40,
             competitors=("Skyline AI",)),
    DealSpec("hnwl_wms", "hnwl", "华南物流园 WMS 与月台预约", "1150000", "bid", 42),
    DealSpec("youxuan_omni", "youxuan", "优选零售全渠道会员与库存中台", "2400000", "bid", 45,
             competitors=("Northwind Systems",)),
    DealSpec("zshh_credit", "zshh", "浙商汇通信贷审批流程自动化", "8600000", "solution_atb_pending2", 50,
             need="对公信贷审批流程自动化：进件、尽调材料识别、审批流和贷后预警", competitors=("Skyline AI",)),
    DealSpec("rongxin_rec", "rongxin", "融信证券投顾合规双录系统", "2900000", "solution_atb_rejected", 50,
             need="投顾业务合规双录：录音录像、话术质检和留痕归档",
             reason="毛利 12% 低于重点客户 18% 的底线，请重新报价并说明交付成本"),
    DealSpec("chaoshang_trace", "chaoshang", "潮商食品安全追溯", "680000", "negotiate", 50),
    DealSpec("ludao_pacs", "ludao", "鹭岛医疗影像云 PACS 扩容", "1900000", "bid", 55,
             need="Expand the imaging cloud (PACS) to 4 more hospitals with 5-year archive",
             competitors=("MedCloud",)),
    DealSpec("guanggu_clean", "guanggu", "光谷半导体洁净室环境监控", "1300000", "solution", 55),
    DealSpec("lanhai_smt", "lanhai", "蓝海电子 SMT 产线良率分析", "1600000", "solution_no_quote", 58),
    DealSpec("kessler_plant2", "kessler", "Kessler second plant rollout (Changzhou)", "780000", "negotiate", 60,
             currency="USD", need="Roll the paint shop analytics out to the new Changzhou plant",
             competitors=("Northwind Systems",)),
    DealSpec("meiju_guide", "meiju", "美居家居门店数字化导购", "380000", "abandoned@qualify", 60,
             reason="客户今年预算冻结，明年再议"),
    DealSpec("renhe_ops", "renhe", "仁和医院运营数据平台", "1750000", "initiated_sr_pending", 70,
             sr="sr_zhou", fr="fr_sun"),
    DealSpec("kangtai_udi", "kangtai", "康泰医疗 UDI 追溯系统", "720000", "initiated", 75),
    DealSpec("yefeng_crm", "yefeng", "椰风酒店集团会员 CRM", "540000", "initiated", 78,
             need="Loyalty CRM across 14 hotels with WeChat mini-program booking", sr="sr_zhou"),
    DealSpec("yuehai_mes", "yuehai", "粤丰集团海外工厂 MES 复制（越南）", "4500000", "initiated_no_plan", 80,
             need="把广州工厂的 MES 模板复制到越南新工厂，含多语言和本地化部署"),
    DealSpec("weilai_card", "weilai", "未来教育智慧校园一卡通升级", "460000", "qualify_ati_rejected", 95,
             reason="没有决策人参与、预算未确认；请先约到集团分管副总再提立项"),
    DealSpec("hdjm_pdm", "hdjm", "华东精密设备预测性维护试点", "650000", "qualify_ati_pending", 100,
             need="冲压线 20 台关键设备的振动监测与预测性维护试点，3 个月见效"),
    DealSpec("haian_twin", "haian", "海岸学院实训中心数字孪生教学平台", "890000", "qualify_no_fr", 105),
    DealSpec("dongmeng_oms", "dongmeng", "东盟商贸跨境电商订单中台", "760000", "qualify", 110,
             need="跨境电商订单中台：对接 Shopee、Lazada 和自建站，统一库存与物流"),
)


# Leads that never (yet) became deals: every source and status, disqualified ones with reasons.
@dataclass(frozen=True)
class OtherLead:
    key: str
    source: str
    company: str
    contact: str
    title: str | None
    email: str | None
    region: str
    need: str | None
    budget: str | None
    timeline: str
    authority: str
    status: str  # new | contacted | nurturing | qualified | disqualified | revived
    day: int
    by: str  # "ops" (routed by the assignment rules) or a rep key
    reason: str | None = None


OTHER_LEADS: tuple[OtherLead, ...] = (
    OtherLead("wenzhou", "website", "温州瑞安阀门有限公司", "陈国栋", "设备科长", "chen.gd@ruian-valve.example", "east",
              "阀门生产线设备联网和能耗统计", None, "within_12_months", "influencer", "new", 111, "ops"),
    OtherLead("orion", "ad", "Orion Biotech Suzhou", "Sarah Miller", "Operations Director",
              "sarah.miller@orionbio.example", "", "Batch record digitisation for a GMP plant", "600000",
              "within_6_months", "decision_maker", "new", 112, "ops"),
    OtherLead("xiangjiang", "social", "长沙湘江文旅集团", "彭丽", "市场部经理", None, "central",
              "景区客流和会员数据分析", None, "unknown", "user", "new", 113, "ops"),
    OtherLead("yunfan", "website", "深圳云帆无人机有限公司", "邓超", "供应链经理", "deng.chao@yunfan-uav.example",
              "south", "Supplier portal and incoming inspection", "300000", "within_6_months", "influencer",
              "new", 114, "ops"),
    OtherLead("haiwan", "trade_show", "青岛海湾化工有限公司", "于洋", "安环部部长", "yu.yang@haiwan-chem.example",
              "east", "危化品仓储安全监测与巡检数字化", "800000", "within_12_months", "influencer",
              "contacted", 90, "tom"),
    OtherLead("guizhong", "partner", "广西桂中物流有限公司", "韦明", "信息部经理", "wei.ming@guizhong-log.example",
              "south", "钢材物流的运输计划与在途跟踪", "1500000", "within_6_months", "influencer",
              "contacted", 92, "liu"),
    OtherLead("meridian", "website", "Meridian Retail Group", "James Carter", "COO",
              "james.carter@meridian-retail.example", "south", "Store labour scheduling for 80 stores in South China",
              "900000", "within_6_months", "decision_maker", "contacted", 96, "ops"),
    OtherLead("shaoxing", "other", "绍兴纺织印染集团", "沈建华", "总经理助理", None, "east",
              "印染车间能耗与排污在线监测", None, "unknown", "user", "contacted", 98, "li"),
    OtherLead("minjiang", "referral", "福州闽江电力设计院", "林涛", "数字化中心主任", "lin.tao@mjepdi.example", "south",
              "设计院项目管理与图档协同，预算在明年二季度", "1200000", "over_12_months", "decision_maker",
              "nurturing", 30, "emily"),
    OtherLead("yunhe", "ad", "扬州运河文旅发展有限公司", "王磊", "信息化专员", "wang.lei@yunhe-travel.example", "east",
              "智慧景区票务", "200000", "over_12_months", "user", "nurturing", 48, "ops"),
    OtherLead("evergreen", "social", "Evergreen Schools Foundation", "Olivia Brown", "IT Coordinator",
              "olivia.brown@evergreen-schools.example", "south", "Campus network and device management",
              None, "within_12_months", "influencer", "nurturing", 65, "emily"),
    OtherLead("taizhou", "trade_show", "台州精工模具有限公司", "郑伟", "厂长", "zheng.wei@tzmould.example", "east",
              "模具车间排产和工时统计，想先了解案例", "350000", "within_12_months", "decision_maker",
              "nurturing", 72, "li"),
    OtherLead("zhanjiang", "website", "湛江湾港务有限公司", "梁志强", "信息中心副主任", "liang.zq@zjbay-port.example", "south",
              "港口设备资产管理，新 CIO 上任后重新启动评估", "2000000", "within_12_months", "influencer",
              "revived", 20, "ops", reason="暂无预算，年内不会立项"),
    OtherLead("lijing", "partner", "昆山立精模具配件有限公司", "黄晓明", "IT 总监", "huang.xm@lijing-parts.example",
              "east", "注塑车间 MES 和模具寿命管理，已有预算", "1600000", "within_3_months", "decision_maker",
              "qualified", 100, "li"),
    OtherLead("xinde", "referral", "惠州鑫德电池科技有限公司", "曾强", "制造工程部经理", "zeng.qiang@xinde-batt.example",
              "south", "电芯产线的质量追溯和 SPC 分析", "2300000", "within_6_months", "influencer",
              "qualified", 102, "liu"),
    OtherLead("lakeside", "trade_show", "Hangzhou Lakeside Hotels", "Michael Zhang", "General Manager",
              "michael.zhang@lakeside-hotels.example", "east", "Guest experience platform for 6 lakeside hotels",
              "650000", "within_3_months", "decision_maker", "qualified", 104, "tom"),
    OtherLead("zju", "website", "浙江某高校课题组", "王同学", "研究生", "student.wang@univ.example", "east",
              "毕业论文调研 MES 选型", None, "unknown", "user", "disqualified", 40, "ops",
              reason="学生课题调研，没有采购需求"),
    OtherLead("rival", "ad", "深圳某同业科技公司", "李先生", None, None, "south",
              "索要详细报价单和产品白皮书", None, "unknown", "unknown", "disqualified", 52, "ops",
              reason="同业竞品套取报价，不跟进"),
    OtherLead("xiaolu", "social", "小鹿咖啡工作室", "陈小鹿", "店主", "xiaolu@coffee.example", "south",
              "收银和会员小程序", "15000", "within_3_months", "decision_maker", "disqualified", 58, "liu",
              reason="规模过小：预算不足 2 万元，推荐给渠道伙伴的标准产品"),
    OtherLead("globalparts", "trade_show", "Global Parts Trading LLC", "Ahmed Khan", "Procurement Manager",
              "ahmed.khan@globalparts.example", "", "Spare parts catalogue for the Gulf region", "500000",
              "within_6_months", "influencer", "disqualified", 62, "tom",
              reason="Outside our territory (Middle East): handed to the regional partner"),
    OtherLead("hefeng", "other", "嘉兴禾丰农业发展有限公司", "朱明", "办公室主任", None, "east",
              "农场物联网", None, "unknown", "unknown", "disqualified", 68, "li",
              reason="三次联系均未接通，留的电话是空号"),
)


# ---------------------------------------------------------------------------------------------
# Words the team uses in their activity log (zh for zh-speaking users, en otherwise).
# ---------------------------------------------------------------------------------------------

WORDS = {
    "lead_call": ("首次电话沟通：确认需求和预算范围", "First call: confirmed the need and budget range"),
    "lead_meeting": ("上门拜访：现场调研业务痛点", "On-site visit: walked the floor to map the pain points"),
    "workshop": ("需求调研会：与客户梳理业务流程和关键指标", "Discovery workshop: mapped processes and KPIs with the customer"),
    "tech_exchange": ("技术交流：方案架构和集成接口评审", "Technical exchange: reviewed architecture and interfaces"),
    "site_survey": ("现场勘查：确认交付范围、资源和实施周期", "Site survey: confirmed delivery scope, resources and timeline"),
    "bid_sent": ("投标文件已递交，附报价和实施计划", "Bid submitted with the quote and the implementation plan"),
    "install": ("软硬件到货安装与上线", "Delivery, installation and go-live"),
    "final_acceptance": ("项目终验", "Final acceptance"),
    "promise": ("客户财务承诺月底前付清到货款", "Customer finance promised to pay the delivery invoice by month end"),
    "overpaid": ("客户多付的尾款留作预收款", "The customer's overpayment is kept as credit"),
    "competitor": ("竞争情报：对手报价低约 15%，主打免费实施",
                   "Competitive note: rival is about 15% cheaper, pitching free implementation"),
    "terms_call": ("合同条款沟通：付款节点与验收标准", "Contract call: payment milestones and acceptance criteria"),
    "kickoff": ("签约后项目启动会：交接给交付团队", "Post-signature kickoff: handed over to delivery"),
    "budget_ok": ("客户财务已出具预算批复函", "Customer finance issued the budget approval letter"),
    "nurture": ("加入培育计划：每月推送案例和白皮书", "Added to nurture track: monthly case studies and white papers"),
    "revived": ("客户重新联系：新 CIO 上任，重启评估", "Customer came back: new CIO restarted the evaluation"),
    "cold": ("线索备注：暂无明确采购计划", "Lead note: no firm purchase plan yet"),
}

SOLUTIONS = {
    "east": "云边协同架构：私有云部署核心平台，边缘网关采集设备数据；标准产品 + 少量定制，分两期上线。",
    "south": "Modular platform on the customer's private cloud; standard product plus configured workflows; "
             "two releases, pilot site first, integration through the customer's ESB.",
}
PLANS_TEXT = {
    "east": "交付计划：4 人核心团队 + 本地合作伙伴；一期 12 周，二期 10 周；关键风险为数据接口和现场停机窗口。",
    "south": "Delivery plan: 5-person team with a local partner; pilot in 10 weeks, rollout in 14; key risks "
             "are legacy data quality and the customer's change freeze in Q4.",
}


# ---------------------------------------------------------------------------------------------
# The engine: steps on a business-day calendar, each one use case in its own transaction.
# ---------------------------------------------------------------------------------------------

class DemoClock:
    """The seed's clock: moves only forward, one minute per transaction at least."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def move_to(self, at: datetime) -> None:
        self.now = at if at > self.now else self.now + timedelta(minutes=1)


def business_day(start: datetime, n: int, hour: float = 0) -> datetime:
    """The n-th working day after `start` (Mon-Fri), `hour` hours after start's time of day."""
    d, left = start, n
    while left > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            left -= 1
    return d + timedelta(hours=hour)


Step = Callable[[Any, "_Seed"], Any]


@dataclass
class _Seed:
    start: datetime
    users: dict[str, int] = field(default_factory=dict)
    teams: dict[str, int] = field(default_factory=dict)
    leads: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, list[int]] = field(default_factory=dict)
    opps: dict[str, int] = field(default_factory=dict)
    approvals: dict[str, int] = field(default_factory=dict)
    contracts: dict[str, int] = field(default_factory=dict)
    proposed: dict[str, int] = field(default_factory=dict)
    lead_owners: dict[str, int | None] = field(default_factory=dict)
    requests: int = 0
    phones: int = 0
    steps: list[tuple[datetime, int, str, Step]] = field(default_factory=list)

    def actor(self, who: str) -> Actor:
        """The user acting, on the channel they use; request ids from a counter (determinism)."""
        self.requests += 1
        person = PERSON.get(who)
        channel = (Channel.WECOM if person and person.wecom else Channel.SLACK if person and person.slack
                   else Channel.CLI if person else Channel.SYSTEM)
        return Actor(self.users[who], channel, False, f"demo-{self.requests:05d}")

    def at(self, day: int, hour: float, label: str, fn: Step) -> None:
        self.steps.append((business_day(self.start, day, hour), len(self.steps), label, fn))

    def contracts_order(self, uow, key: str) -> int:
        return uow.orders.for_contract(self.contracts[key]).id

    def words(self, who: str, key: str) -> str:
        zh, en = WORDS[key]
        person = PERSON.get(who)
        return zh if person is None or person.locale == "zh" else en


PERSON = {p.key: p for p in PEOPLE}


def _email(p: PersonSpec) -> str:
    return f"{p.email}@{DOMAIN}"


def _phone(n: int) -> str:
    return f"+86 139 {n // 10000 % 10000:04d} {n % 10000:04d}"


def _q(amount: str | Decimal) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))


def _lead_payload(spec: LeadSpec | OtherLead, company: str, region: str, phone_no: int) -> dict:
    return {"source": spec.source, "company": company, "contact_name": spec.contact, "title": spec.title,
            "email": spec.email, "phone": _phone(phone_no), "region": region, "need": spec.need,
            "budget": spec.budget, "timeline": spec.timeline, "authority": spec.authority}


def _log(s: _Seed, uow, who: str, kind: str, words: str, **about) -> None:
    activity_svc.log_activity({"kind": kind, "subject": s.words(who, words), **about}, actor=s.actor(who), uow=uow)


# --- organisation ------------------------------------------------------------------------------

DECISION_TTL_HOURS = 24 * 14


def _org_steps(s: _Seed) -> None:
    def teams(uow, s: _Seed) -> None:
        for key, (name, region, _) in TEAMS.items():
            s.teams[key] = user_svc.create_team({"name": name, "region": region}, actor=s.actor("system"), uow=uow)

    def people(uow, s: _Seed) -> None:
        for p in PEOPLE:
            view = user_svc.create_user({
                "email": _email(p), "name_en": p.name_en, "name_zh": p.name_zh, "locale": p.locale,
                "region": p.region, "roles": [p.role], "manager_id": s.users[p.manager] if p.manager else None,
                "team_id": s.teams[p.team] if p.team else None, "slack_user_id": p.slack, "wecom_userid": p.wecom,
            }, actor=s.actor("system"), uow=uow)
            s.users[p.key] = view.id

    def managers_and_rules(uow, s: _Seed) -> None:
        for key, (_, _, manager) in TEAMS.items():
            user_svc.set_team_manager(s.teams[key], s.users[manager], actor=s.actor("system"), uow=uow)
        for priority, team, region, cap in RULES:
            user_svc.add_assignment_rule({"priority": priority, "team_id": s.teams[team], "region": region,
                                          "max_open_leads": cap}, actor=s.actor("system"), uow=uow)

    def price_list(uow, s: _Seed) -> None:
        admin = s.actor("system")
        for sku, name_en, name_zh, unit, cost, floor, _ in PRODUCTS:
            catalog_svc.create_product({"sku": sku, "name_en": name_en, "name_zh": name_zh, "unit": unit,
                                        "cost": cost, "floor_price": floor}, actor=admin, uow=uow)
        for region in ("east", "south"):
            catalog_svc.create_price_book({"name": f"Xinglian {region} CNY", "region": region, "currency": "CNY",
                                           "prices": {p[0]: p[6] for p in PRODUCTS}}, actor=admin, uow=uow)

    s.at(0, -1.0, "teams", teams)
    s.at(0, -0.9, "people", people)
    s.at(0, -0.8, "team managers and routing rules", managers_and_rules)
    s.at(0, -0.7, "catalog and price books", price_list)
    s.at(0, -0.6, "sales targets", _targets)


# Quarterly targets (CNY) per rep, and the teams' own: what "forecast vs target" is measured against.
REP_TARGETS = {"li": "12000000", "tom": "10000000", "liu": "8000000", "emily": "6000000"}
TEAM_TARGETS = {"east": "24000000", "south": "15000000"}
TARGET_QUARTERS = ("2026-Q3", "2026-Q4", "2027-Q1")


def _targets(uow, s: _Seed) -> None:
    from domain.analytics.targets import set_target  # the read side's own write: kept out of import time

    for quarter in TARGET_QUARTERS:
        for who, amount in REP_TARGETS.items():
            set_target({"user_id": s.users[who], "period": quarter, "amount": amount}, actor=s.actor("ops"), uow=uow)
        for team, amount in TEAM_TARGETS.items():
            set_target({"team_id": s.teams[team], "period": quarter, "amount": amount}, actor=s.actor("ops"),
                       uow=uow)


# sku, English name, Chinese name, unit, cost, floor price, list price (CNY)
PRODUCTS = [
    ("MES-CORE", "MES core licence", "MES 核心许可", "plant", "180000", "300000", "420000"),
    ("MES-LINE", "MES line module", "MES 产线模块", "line", "20000", "42000", "60000"),
    ("DATA-PLAT", "Industrial data platform", "工业数据平台", "site", "150000", "260000", "380000"),
    ("EDGE-GW", "Edge gateway", "边缘网关", "unit", "3200", "5200", "7800"),
    ("AI-QC", "AI visual quality inspection", "AI 视觉质检", "line", "45000", "80000", "120000"),
    ("EMS-SUITE", "Energy management suite", "能源管理套件", "site", "90000", "160000", "240000"),
    ("SVC-DAY", "Implementation engineer day", "实施工程师人天", "day", "1800", "2600", "3500"),
    ("SUP-YEAR", "Annual support and maintenance", "年度运维支持", "year", "30000", "52000", "80000"),
]


# --- accounts created directly (imported from the old CRM by sales ops) --------------------------

def _direct_account_steps(s: _Seed, acc: AccountSpec) -> None:
    def create(uow, s: _Seed, acc=acc) -> None:
        view = account_svc.create_account({"name": acc.name, "industry": acc.industry, "region": acc.region,
                                           "tier": acc.tier, "owner_id": s.users[acc.owner]},
                                          actor=s.actor("ops"), uow=uow)
        s.accounts[acc.key] = view.id
        s.contacts[acc.key] = []

    s.at(0, 0.5, f"account {acc.key}", create)
    _contact_steps(s, acc, day=1)


def _contact_steps(s: _Seed, acc: AccountSpec, *, day: int) -> None:
    for i, (name, title, role, rel, email) in enumerate(acc.contacts):
        def add(uow, s: _Seed, acc=acc, name=name, title=title, role=role, rel=rel, email=email, i=i) -> None:
            s.phones += 1
            area = "21" if acc.region == "east" else "755"
            view = account_svc.add_contact(s.accounts[acc.key], {
                "name": name, "title": title, "email": email, "phone": f"+86 {area} 6{s.phones:03d} {5000 + i:04d}",
                "decision_role": role, "relationship": rel}, actor=s.actor(acc.owner), uow=uow)
            s.contacts[acc.key].append(view.id)

        s.at(day, 1 + i * 0.25, f"contact {acc.key}/{name}", add)


# --- one deal's story ---------------------------------------------------------------------------

def _deal_steps(s: _Seed, d: DealSpec, phone_no: int) -> None:  # noqa: C901 - a story reads top-down
    acc = ACCOUNT_BY_KEY[d.account]
    rep, sm = acc.owner, MANAGER_OF[acc.owner]
    sr, fr = d.sr or REGION_SR[acc.region], d.fr or REGION_FR[acc.region]
    plan, k = d.plan, d.key
    day = d.day
    born_from_lead = acc.lead is not None and not any(x.account == d.account for x in DEALS[:DEALS.index(d)])

    def opp(s: _Seed) -> int:
        return s.opps[k]

    # 1. Birth: a lead worked up to conversion, or a deal opened on a known account.
    if born_from_lead:
        lead = acc.lead

        def create_lead(uow, s: _Seed) -> None:
            data = _lead_payload(lead, acc.name, acc.region, phone_no)
            if lead.by == "ops":
                data["owner_id"] = s.users[rep]
            view = lead_svc.create_lead(data, actor=s.actor("ops" if lead.by == "ops" else rep), uow=uow)
            s.leads[k] = view.id

        s.at(day, 0.2, f"{k}: lead", create_lead)
        s.at(day + 1, 1, f"{k}: lead call",
             lambda uow, s: _log(s, uow, rep, "call", "lead_call", lead_id=s.leads[k]))
        s.at(day + 3, 5, f"{k}: lead visit",
             lambda uow, s: _log(s, uow, rep, "meeting", "lead_meeting", lead_id=s.leads[k]))
        s.at(day + 5, 2, f"{k}: qualify",
             lambda uow, s: lead_svc.qualify_lead(s.leads[k], actor=s.actor(rep), uow=uow))

        def convert(uow, s: _Seed) -> None:
            close = business_day(s.start, day + 70).date()
            view = lead_svc.convert_lead(s.leads[k], {
                "opportunity_name": d.name, "amount": d.amount, "currency": d.currency,
                "expected_close_date": close.isoformat(), "industry": acc.industry}, actor=s.actor(rep), uow=uow)
            s.accounts[acc.key], s.opps[k] = view.account_id, view.opportunity_id
            s.contacts[acc.key] = [view.contact_id]
            if acc.tier != "standard":
                account_svc.update_account(view.account_id, {"tier": acc.tier}, actor=s.actor(rep), uow=uow)

        s.at(day + 6, 0.5, f"{k}: convert", convert)
        _contact_steps(s, acc, day=day + 6)
        if d.competitors:
            s.at(day + 6, 3, f"{k}: competitors", lambda uow, s: opp_svc.update_opportunity(
                opp(s), {"competitors": list(d.competitors)}, actor=s.actor(rep), uow=uow))
    else:
        def create_opp(uow, s: _Seed) -> None:
            close = business_day(s.start, day + 70).date()
            view = opp_svc.create_opportunity({
                "name": d.name, "account_id": s.accounts[acc.key], "amount": d.amount, "currency": d.currency,
                "expected_close_date": close.isoformat(), "competitors": list(d.competitors),
                "customer_need": d.need, "budget": d.amount}, actor=s.actor(rep), uow=uow)
            s.opps[k] = view.id

        s.at(day + 6, 0.5, f"{k}: opportunity", create_opp)

    # 2. The iron triangle, then the first workshop with the customer.
    no_fr = plan == "qualify_no_fr"
    s.at(day + 7, 1, f"{k}: triangle", lambda uow, s: opp_svc.assign_iron_triangle(
        opp(s), sr_id=s.users[sr], fr_id=None if no_fr else s.users[fr], actor=s.actor(rep), uow=uow))
    s.at(day + 8, 5, f"{k}: workshop", lambda uow, s: _log(
        s, uow, rep, "meeting", "workshop", opportunity_id=opp(s),
        contact_id=s.contacts[acc.key][0] if s.contacts.get(acc.key) else None))

    def gate(at: int, kind: str, *, note: str | None = None, ttl: int | None = None) -> None:
        def request(uow, s: _Seed) -> None:
            # The story decides gates days after requesting them: a week's lifetime unless told otherwise.
            view = approval_svc.request_gate(opp(s), kind, note=note, actor=s.actor(rep), uow=uow,
                                             ttl_hours=ttl or DECISION_TTL_HOURS)
            s.approvals[f"{k}:{kind}"] = view.id

        s.at(at, 2, f"{k}: request {kind}", request)

    def decide(at: int, kind: str, who: str, outcome: str = "approve", comment: str | None = None,
               hour: float = 4) -> None:
        s.at(at, hour, f"{k}: {who} {outcome}s {kind}", lambda uow, s: approval_svc.decide_approval(
            s.approvals[f"{k}:{kind}"], outcome, comment=comment, actor=s.actor(who), uow=uow))

    def close(at: int, outcome: str) -> None:
        s.at(at, 6, f"{k}: {outcome}", lambda uow, s: opp_svc.close_opportunity(
            opp(s), outcome, d.reason, actor=s.actor(rep), uow=uow))

    # 3. Qualify → initiated (ATI).
    t = day + 9
    if plan in ("qualify", "qualify_no_fr"):
        return
    if plan == "abandoned@qualify":
        close(t + 3, "abandoned")
        return
    if plan == "qualify_ati_pending":
        gate(t, "ATI", note="客户已确认预算，申请立项", ttl=OPEN_REQUEST_TTL_HOURS)
        return
    if plan == "qualify_ati_rejected":
        gate(t, "ATI")
        decide(t + 1, "ATI", sm, "reject", d.reason)
        return
    gate(t, "ATI")
    if plan == "won_ati_retry":
        decide(t + 1, "ATI", sm, "reject", d.reason)
        s.at(t + 4, 3, f"{k}: budget letter", lambda uow, s: _log(s, uow, rep, "note", "budget_ok",
                                                                  opportunity_id=opp(s)))
        gate(t + 5, "ATI", note="Budget letter attached; re-requesting initiation")
        t += 5
    decide(t + 1, "ATI", sm)

    # 4. Initiated → solution (solution review): SR's solution, FR's delivery plan.
    t += 5
    if plan == "abandoned@initiated":
        close(t + 2, "abandoned")
        return
    if plan in ("initiated",):
        return
    s.at(t, 3, f"{k}: tech exchange", lambda uow, s: _log(s, uow, sr, "meeting", "tech_exchange",
                                                           opportunity_id=opp(s)))
    s.at(t + 1, 2, f"{k}: solution", lambda uow, s: opp_svc.record_solution(
        opp(s), SOLUTIONS[acc.region], actor=s.actor(sr), uow=uow))
    if plan == "initiated_no_plan":
        return
    s.at(t + 2, 3, f"{k}: site survey", lambda uow, s: _log(s, uow, fr, "meeting", "site_survey",
                                                             opportunity_id=opp(s)))
    s.at(t + 3, 2, f"{k}: delivery plan", lambda uow, s: opp_svc.record_delivery_plan(
        opp(s), PLANS_TEXT[acc.region], actor=s.actor(fr), uow=uow))
    if plan == "initiated_sr_pending":
        gate(t + 4, "solution_review", ttl=OPEN_REQUEST_TTL_HOURS)
        return
    gate(t + 4, "solution_review")
    decide(t + 5, "solution_review", sm)

    # 5. Solution → bid (ATB): needs an approved quote (CPQ arrives later: a quote row for now).
    t += 10
    if plan in ("solution", "lost@solution"):
        if plan == "lost@solution":
            close(t + 2, "lost")
        return

    def quote(status: str):
        def add(uow, s: _Seed) -> None:
            total = _q(Decimal(d.amount) * Decimal("0.96"))
            uow.quotes.add(Quote(opportunity_id=opp(s), version=1, status=status, total=total,
                                       currency=d.currency, created_at=uow.now()))
        return add

    if plan == "solution_no_quote":
        s.at(t, 3, f"{k}: draft quote", quote("draft"))
        return
    s.at(t, 3, f"{k}: quote", quote("approved"))
    if plan == "solution_atb_pending2":
        gate(t + 1, "ATB", note="战略客户，建议投标", ttl=OPEN_REQUEST_TTL_HOURS)
        decide(t + 2, "ATB", sm)
        return
    if plan == "solution_atb_rejected":
        gate(t + 1, "ATB")
        decide(t + 2, "ATB", sm, "reject", d.reason)
        return
    gate(t + 1, "ATB")
    decide(t + 2, "ATB", sm)
    decide(t + 3, "ATB", "director")

    # 6. Bid → negotiate (no gate): the bid goes out, the customer shortlists us.
    t += 5
    s.at(t, 4, f"{k}: bid sent", lambda uow, s: _log(s, uow, rep, "email", "bid_sent", opportunity_id=opp(s)))
    if plan in ("bid", "lost@bid"):
        s.at(t + 3, 5, f"{k}: competitor", lambda uow, s: _log(s, uow, rep, "note", "competitor",
                                                               opportunity_id=opp(s)))
        if plan == "lost@bid":
            close(t + 8, "lost")
        return
    s.at(t + 8, 2, f"{k}: negotiate", lambda uow, s: opp_svc.advance_stage(
        opp(s), "negotiate", actor=s.actor(rep), uow=uow))
    s.at(t + 9, 3, f"{k}: terms call", lambda uow, s: _log(s, uow, rep, "call", "terms_call",
                                                            opportunity_id=opp(s)))

    # 7. Negotiate → won (ATC): FR signs deliverability off before anything is signed.
    t += 12
    if plan == "negotiate":
        return
    s.at(t, 2, f"{k}: deliverability", lambda uow, s: opp_svc.sign_off_deliverability(
        opp(s), actor=s.actor(fr), uow=uow))
    if plan == "negotiate_signed":
        return

    def contract(uow, s: _Seed) -> None:
        """The customer accepts the quote; the AR drafts the contract (30/60/10) and puts it under review."""
        quote = uow.quotes.for_opportunity(opp(s))[-1]
        quote_svc.send_quote(quote.id, actor=s.actor(rep), uow=uow)
        quote_svc.accept_quote(quote.id, actor=s.actor(rep), uow=uow)
        view = contract_svc.create_contract({"quote_id": quote.id}, actor=s.actor(rep), uow=uow)
        contract_svc.submit_contract(view.id, actor=s.actor(rep), uow=uow)
        s.contracts[k] = view.id

    s.at(t, 5, f"{k}: contract under review", contract)
    if plan in ("negotiate_atc_pending", "lost@negotiate_cancel"):
        gate(t + 1, "ATC", note="付款条件 30/60/10，验收后 30 天付款", ttl=OPEN_REQUEST_TTL_HOURS)
        if plan == "lost@negotiate_cancel":
            close(t + 4, "lost")
        return
    gate(t + 1, "ATC")
    decide(t + 2, "ATC", "director")
    decide(t + 2, "ATC", "finance", hour=6)
    s.at(t + 4, 3, f"{k}: kickoff", lambda uow, s: _log(s, uow, fr, "meeting", "kickoff", opportunity_id=opp(s)))
    _post_sale_steps(s, d, k, rep=rep, fr=fr, t=t + 4)


# How far each won deal's contract gets: delivered and paid in full, or stuck somewhere on the way.
AFTER_SALE = {
    "hdjm_mes": "closed",  # delivered, accepted, paid (one overpayment left as credit), closed
    "yuehai_scm": "overdue_promise",  # delivered; the delivery invoice is overdue, the customer promised
    "kessler_qa": "delivering",  # advance paid, installation under way
    "shencheng_depot": "overdue_dunned",  # delivered; the delivery invoice is 60+ days late
    "ludao_ih": "signed",  # just signed: the advance invoice is open
}


def _post_sale_steps(s: _Seed, d: DealSpec, k: str, *, rep: str, fr: str, t: int) -> None:
    story = AFTER_SALE.get(k, "signed")
    cur = d.currency

    def paid(day: int, ref: str, amount: str | None = None, *, by: str = "finance", seq: int | None = None) -> None:
        """Money arrives for the contract's oldest open invoice (or an explicit amount)."""
        def post(uow, s: _Seed) -> None:
            contract = uow.contracts.get(s.contracts[k])
            open_ = [i for i in uow.invoices.for_contract(contract.id) if i.status in ("issued", "partially_paid")]
            target = open_[0] if seq is None else open_[seq]
            data = {"contract_id": contract.id, "amount": amount or str(target.balance), "currency": cur,
                    "received_on": uow.now().date().isoformat(), "bank_ref": f"{ref}-{contract.number}"}
            if by == "finance":
                payment_svc.record_payment(data, actor=s.actor("finance"), uow=uow)
            else:
                view = payment_svc.propose_payment(data, actor=s.actor(by), uow=uow)
                s.proposed[k] = view.id
        s.at(day, 3, f"{k}: payment {ref}", post)

    if story == "signed":
        return
    s.at(t + 1, 2, f"{k}: order", lambda uow, s: delivery_svc.create_order(s.contracts[k], {"milestones": [
        {"name": s.words(fr, "install"), "planned_date": business_day(s.start, t + 15).date().isoformat()},
        {"name": s.words(fr, "final_acceptance"), "kind": "final_acceptance",
         "planned_date": business_day(s.start, t + 30).date().isoformat()}]}, actor=s.actor(fr), uow=uow))
    paid(t + 6, "ADV")
    if story == "delivering":
        return

    def deliver(day: int, seq: int, cert: str) -> None:
        s.at(day, 2, f"{k}: delivered {seq}", lambda uow, s: delivery_svc.mark_delivered(
            s.contracts_order(uow, k), seq, actor=s.actor(fr), uow=uow))
        s.at(day + 2, 4, f"{k}: accepted {seq}", lambda uow, s: delivery_svc.accept_milestone(
            s.contracts_order(uow, k), seq, {"certificate_ref": f"{cert}-{s.contracts[k]:03d}"},
            actor=s.actor(fr), uow=uow))

    deliver(t + 14, 1, "YS")  # 验收单
    if story == "overdue_promise":
        s.at(t + 45, 3, f"{k}: promise to pay", lambda uow, s: collection_svc.record_promise(
            next(i.id for i in uow.invoices.for_contract(s.contracts[k]) if i.status == "issued"),
            {"amount": str(next(i.balance for i in uow.invoices.for_contract(s.contracts[k])
                                if i.status == "issued")),
             "promised_on": business_day(s.start, t + 80).date().isoformat(), "note": s.words(rep, "promise")},
            actor=s.actor(rep), uow=uow))
        return
    if story == "overdue_dunned":
        s.at(t + 60, 1, f"{k}: dunning run", lambda uow, s: collection_svc.run_dunning(actor=s.actor("system"),
                                                                                        uow=uow))
        return
    deliver(t + 28, 2, "ZY")  # 终验
    paid(t + 20, "DLV", by=rep)
    s.at(t + 21, 2, f"{k}: confirm payment", lambda uow, s: payment_svc.confirm_payment(
        s.proposed[k], actor=s.actor("finance"), uow=uow))

    def final_payment(uow, s: _Seed) -> None:
        contract = uow.contracts.get(s.contracts[k])
        balance = sum((i.balance for i in uow.invoices.for_contract(contract.id)), Decimal("0"))
        payment_svc.record_payment({"contract_id": contract.id, "amount": str(balance + Decimal("1200")),
                                    "currency": cur, "received_on": uow.now().date().isoformat(),
                                    "bank_ref": f"FIN-{contract.number}", "note": s.words("finance", "overpaid")},
                                   actor=s.actor("finance"), uow=uow)

    s.at(t + 40, 3, f"{k}: final payment", final_payment)
    s.at(t + 41, 2, f"{k}: close contract", lambda uow, s: contract_svc.close_contract(
        s.contracts[k], actor=s.actor("finance"), uow=uow))


# --- leads that stay leads ------------------------------------------------------------------------

def _lead_steps(s: _Seed, lead: OtherLead, phone_no: int) -> None:
    k, day = lead.key, lead.day

    def owner(s: _Seed) -> str:
        uid = s.lead_owners.get(k)
        if uid is None:
            raise Conflict(f"demo lead {k} got no owner; check the assignment rules")
        return next(key for key, v in s.users.items() if v == uid)

    def create(uow, s: _Seed) -> None:
        view = lead_svc.create_lead(_lead_payload(lead, lead.company, lead.region, phone_no),
                                    actor=s.actor(lead.by), uow=uow)
        s.leads[k] = view.id
        s.lead_owners[k] = view.owner_id

    s.at(day, 0.3, f"lead {k}", create)
    status = lead.status
    if status == "new":
        if lead.by == "ops" and lead.region:
            s.at(day, 1.5, f"lead {k}: note", lambda uow, s: _log(s, uow, owner(s), "note", "cold", lead_id=s.leads[k]))
        return

    def change(to: str, reason: str | None = None):
        return lambda uow, s: lead_svc.change_lead_status(s.leads[k], to, reason=reason,
                                                          actor=s.actor(owner(s)), uow=uow)

    if status == "disqualified" and lead.key in ("zju", "rival"):
        s.at(day + 1, 2, f"lead {k}: disqualify", change("disqualified", lead.reason))
        return
    if status == "disqualified" and lead.key == "hefeng":
        for i in range(3):  # three calls nobody answered
            s.at(day + 1 + i, 2 + i, f"lead {k}: call {i}", lambda uow, s: activity_svc.log_activity(
                {"kind": "call", "subject": "电话未接通", "lead_id": s.leads[k]}, actor=s.actor(owner(s)), uow=uow))
        s.at(day + 4, 5, f"lead {k}: disqualify", change("disqualified", lead.reason))
        return
    s.at(day + 1, 2, f"lead {k}: call",
         lambda uow, s: _log(s, uow, owner(s), "call", "lead_call", lead_id=s.leads[k]))
    if status == "contacted":
        return
    if status == "disqualified":
        s.at(day + 2, 4, f"lead {k}: disqualify", change("disqualified", lead.reason))
        return
    if status in ("nurturing", "revived"):
        if status == "revived":
            s.at(day + 2, 4, f"lead {k}: disqualify", change("disqualified", lead.reason))
            s.at(day + 60, 3, f"lead {k}: came back",
                 lambda uow, s: _log(s, uow, owner(s), "note", "revived", lead_id=s.leads[k]))
            s.at(day + 60, 4, f"lead {k}: revive", change("nurturing"))
            return
        s.at(day + 2, 4, f"lead {k}: nurture", change("nurturing"))
        s.at(day + 2, 5, f"lead {k}: nurture note",
             lambda uow, s: _log(s, uow, owner(s), "note", "nurture", lead_id=s.leads[k]))
        return
    # qualified: a visit, then qualified; conversion is the rep's next move
    s.at(day + 3, 5, f"lead {k}: visit",
         lambda uow, s: _log(s, uow, owner(s), "meeting", "lead_meeting", lead_id=s.leads[k]))
    s.at(day + 5, 2, f"lead {k}: qualify", change("qualified"))


def _duplicate_step(s: _Seed) -> None:
    """The same trade-show contact typed in again from the website form: de-duplicated, no new lead."""
    lead = next(x for x in OTHER_LEADS if x.key == "haiwan")

    def again(uow, s: _Seed) -> None:
        view = lead_svc.create_lead({"source": "website", "company": "青岛海湾化工", "contact_name": "于洋",
                                     "email": lead.email.upper(), "region": "east"}, actor=s.actor("ops"), uow=uow)
        if view.created:
            raise Conflict("demo: the duplicate lead was not recognised")

    s.at(lead.day + 4, 1, "duplicate lead", again)


# ---------------------------------------------------------------------------------------------
# Entry points.
# ---------------------------------------------------------------------------------------------

def demo_present(uow) -> bool:
    return uow.users.by_email(MARKER_EMAIL) is not None


def summarize(uow_factory: Callable[..., Any], *, created: bool, message: str) -> DemoSummary:
    with uow_factory() as uow:
        users = [u for u in uow.users.all() if u.email != SYSTEM_EMAIL]
        roles = Counter(r.value for u in users for r in u.roles)
        leads = uow.leads.all()
        opps = uow.opportunities.all()
        approvals = uow.approvals.all()
        audit_rows = uow.audit.all()
        contracts, invoices = uow.contracts.all(), uow.invoices.all()
        return DemoSummary(
            created=created, message=message,
            users=len(users), users_by_role=dict(sorted(roles.items())), teams=len(uow.teams.all()),
            leads=len(leads), leads_by_status=dict(sorted(Counter(x.status for x in leads).items())),
            accounts=len(uow.accounts.all()), contacts=len(uow.contacts.all()),
            opportunities=len(opps), opportunities_by_stage=dict(sorted(Counter(o.stage for o in opps).items())),
            approvals=len(approvals), approvals_by_status=dict(sorted(Counter(a.status for a in approvals).items())),
            activities=len(uow.activities.all()), audit_rows=len(audit_rows),
            outbox_events=len(uow.outbox.all()),
            contracts=len(contracts), contracts_by_status=dict(sorted(Counter(c.status for c in contracts).items())),
            invoices=len(invoices), invoices_by_status=dict(sorted(Counter(i.status for i in invoices).items())),
            payments=len(uow.payments.all()),
            story_ends_at=max((a.at for a in audit_rows), default=None),
        )


def seed_demo(uow_factory: Callable[..., Any], *, start: datetime = DEMO_START) -> DemoSummary:
    """Seed the demo company through the services. `uow_factory(clock=...)` must honour the clock.

    Does nothing (and says so) when the demo is already there; refuses a database that holds
    other people's data, since the demo's names and emails would collide with it.
    """
    unknown = sorted({d.plan for d in DEALS} - PLANS)
    assert not unknown, f"demo deals with unknown plans: {unknown}"
    with uow_factory() as uow:
        if demo_present(uow):
            complete = (len(uow.opportunities.all()) >= EXPECTED["opportunities"]
                        and len(uow.leads.all()) >= EXPECTED["leads"])
            message = ("The demo is already in this database; nothing written" if complete else
                       "The demo is in this database but incomplete (an earlier seed stopped half-way); "
                       "reset the database and seed again")
            present = True
        else:
            present = False
            others = [u.email for u in uow.users.all() if u.email != SYSTEM_EMAIL]
            if others or uow.leads.all() or uow.accounts.all():
                raise Conflict(
                    "This database already holds data that is not the demo "
                    f"({len(others)} users, {len(uow.leads.all())} leads, {len(uow.accounts.all())} accounts); "
                    "seed the demo into an empty database", details={"users": others[:10]})
    if present:
        return summarize(uow_factory, created=False, message=message)

    clock = DemoClock(start - timedelta(hours=2))
    with uow_factory(clock=clock) as uow:
        seed_policies(uow)
        uow.commit()
        system_id = uow.users.by_email(SYSTEM_EMAIL).id

    s = _Seed(start=start, users={"system": system_id})
    _org_steps(s)
    for acc in ACCOUNTS:
        if acc.lead is None:
            _direct_account_steps(s, acc)
    for n, deal in enumerate(DEALS, start=1):
        _deal_steps(s, deal, phone_no=1000 + n)
    for n, lead in enumerate(OTHER_LEADS, start=1):
        _lead_steps(s, lead, phone_no=2000 + n)
    _duplicate_step(s)

    for at, _, label, fn in sorted(s.steps, key=lambda x: (x[0], x[1])):
        clock.move_to(at)
        with uow_factory(clock=clock) as uow:
            try:
                fn(uow, s)
            except Exception as exc:
                exc.add_note(f"demo step failed: {label} at {clock.now:%Y-%m-%d %H:%M}")
                raise
            uow.commit()

    summary = summarize(uow_factory, created=True, message="")
    return summary.model_copy(update={"message": (
        f"Demo seeded: {summary.users} people, {summary.leads} leads, {summary.accounts} accounts, "
        f"{summary.opportunities} opportunities, {summary.approvals_by_status.get('pending', 0)} approvals pending")})
