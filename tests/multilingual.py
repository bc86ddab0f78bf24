"""Real paragraphs in Japanese, Chinese, German and Russian, laid out like the man pages and
manuals of a multilingual corpus (prose, option lines, an English licence footer), and
template-heavy English pages: what the curate rules must keep whole, in its own language."""

from __future__ import annotations

FOOTER = (
    "Copyright (C) 2020 Free Software Foundation, Inc. License GPLv3+: GNU GPL version 3 or later.\n"
    "This is free software: you are free to change and redistribute it.\n"
    "There is NO WARRANTY, to the extent permitted by law."
)

JAPANESE = {
    "chmod": """名前
chmod - ファイルのアクセス権を変更する

説明
chmod は、指定されたファイルのアクセス権を変更するためのコマンドです。アクセス権は、所有者、グループ、その他のユーザーという三つの利用者の区分ごとに設定されます。
それぞれの区分に対して、読み取り、書き込み、実行の三種類の許可を与えたり取り消したりすることができます。
モードは、八進数の数値で指定することも、記号を使った表記で指定することもできます。たとえば数値の七五五は、所有者にすべての権限を与え、ほかの利用者には読み取りと実行だけを許します。
記号による表記では、利用者の区分を表す文字と、追加や削除を表す記号を組み合わせて、現在の権限を少しずつ変えることができます。
シンボリックリンクのアクセス権は変更されません。リンクの指す先のファイルが代わりに変更されます。

オプション
-R, --recursive
-v, --verbose

""" + FOOTER,
    "touch": """名前
touch - ファイルのタイムスタンプを変更する

説明
touch は、ファイルの最終アクセス時刻と最終更新時刻を現在の時刻に変更するコマンドです。
指定したファイルが存在しない場合には、中身が空の新しいファイルが作られます。ただし、作成しないように指示するオプションを付けた場合は、何も作られません。
時刻は、現在の時刻のかわりに、別のファイルの時刻や、日付を表す文字列で指定することもできます。
この機能は、プログラムのビルドで変更されたファイルを判断させたいときや、バックアップの対象を選びたいときによく使われます。
アクセス時刻だけ、あるいは更新時刻だけを変更することもできます。

オプション
-a
-c, --no-create

""" + FOOTER,
    "date": """名前
date - システムの日付と時刻を表示または設定する

説明
date は、現在の日付と時刻を、指定された書式で表示するコマンドです。書式を指定しない場合は、曜日、月、日、時刻、タイムゾーン、年の順に表示されます。
書式の文字列には、年や月や日を表す記号を自由に組み合わせて書くことができます。たとえば、年を四桁で表示したり、月を二桁の数字で表示したりできます。
管理者の権限を持つ利用者は、このコマンドを使ってシステムの時計を設定することもできます。
ほかの時刻を表す文字列を与えると、その時刻を指定した書式に変換して表示します。これは、スクリプトの中で日付を計算するときに便利です。

オプション
-d, --date=STRING
-u, --utc

""" + FOOTER,
}

CHINESE = {
    "chmod": """名称
chmod - 更改文件的访问权限

描述
chmod 命令用于更改文件的访问权限。每个文件的权限分为三类用户：文件的所有者、所属的用户组以及其他用户。
对于每一类用户，都可以分别授予或者撤销读取、写入和执行这三种权限。
权限模式既可以用八进制数字来表示，也可以用符号来表示。例如，数字七五五表示所有者拥有全部权限，而其他用户只能读取和执行。
使用符号表示法时，可以把代表用户类别的字母和表示增加或删除的符号组合起来，在原有权限的基础上进行修改。
符号链接本身的权限不会被更改，被更改的是链接所指向的文件。

选项
-R, --recursive
-v, --verbose

""" + FOOTER,
    "env": """名称
env - 在修改过的环境中运行程序

描述
env 命令可以在一个经过修改的环境中运行指定的程序。如果不给出任何程序，它就会把当前的环境变量逐行打印出来。
用户可以在命令行上用“名称等于值”的形式设置新的环境变量，这些变量只对将要运行的程序有效。
使用相应的选项，还可以先清空继承下来的全部环境，然后只保留明确指定的变量。
这个命令常常出现在脚本的第一行，用来在系统的搜索路径中查找解释器，这样脚本就不必写死解释器所在的位置。
程序结束后，env 会返回该程序的退出状态；如果程序无法找到或者无法运行，则返回一个特殊的错误代码。

选项
-i, --ignore-environment
-u, --unset=NAME

""" + FOOTER,
}

GERMAN = {
    "chmod": """BEZEICHNUNG
chmod - Dateiberechtigungen ändern

BESCHREIBUNG
Der Befehl chmod ändert die Zugriffsrechte der angegebenen Dateien. Die Rechte werden für den Eigentümer, für die Gruppe und für alle anderen Benutzer getrennt festgelegt.
Für jede dieser drei Klassen kann man das Recht zum Lesen, zum Schreiben und zum Ausführen einzeln gewähren oder entziehen.
Der Modus kann entweder als Oktalzahl oder in symbolischer Schreibweise angegeben werden. So gibt die Zahl 755 dem Eigentümer alle Rechte, während die anderen Benutzer die Datei nur lesen und ausführen dürfen.
In der symbolischen Schreibweise verbindet man die Buchstaben der Benutzerklassen mit einem Zeichen für das Hinzufügen oder Entfernen von Rechten, sodass sich die bestehenden Rechte schrittweise ändern lassen.
Die Rechte symbolischer Links werden nie geändert; stattdessen ändert chmod die Datei, auf die der Link zeigt.

OPTIONEN
-R, --recursive
-v, --verbose

""" + FOOTER,
    "touch": """BEZEICHNUNG
touch - Zeitstempel von Dateien ändern

BESCHREIBUNG
Der Befehl touch setzt die Zeit des letzten Zugriffs und die Zeit der letzten Änderung der angegebenen Dateien auf die aktuelle Uhrzeit.
Wenn eine angegebene Datei noch nicht existiert, wird eine neue, leere Datei angelegt, es sei denn, man verbietet dies mit der passenden Option.
Statt der aktuellen Uhrzeit kann man auch die Zeit einer anderen Datei oder eine frei formulierte Datumsangabe verwenden.
Das ist besonders nützlich, wenn ein Werkzeug wie make erkennen soll, welche Dateien sich seit dem letzten Lauf geändert haben, oder wenn man eine Sicherung auf bestimmte Dateien beschränken möchte.
Man kann auch nur die Zugriffszeit oder nur die Änderungszeit neu setzen und die andere unverändert lassen.

OPTIONEN
-a
-c, --no-create

""" + FOOTER,
}

RUSSIAN = {
    "chmod": """НАЗВАНИЕ
chmod - изменение прав доступа к файлам

ОПИСАНИЕ
Команда chmod изменяет права доступа к указанным файлам. Права задаются отдельно для владельца файла, для его группы и для всех остальных пользователей.
Для каждой из этих трёх категорий можно разрешить или запретить чтение, запись и выполнение файла.
Режим можно указать в виде восьмеричного числа или в символьной форме. Например, число 755 даёт владельцу все права, а остальным пользователям разрешает только чтение и выполнение.
В символьной форме буквы, обозначающие категории пользователей, соединяются со знаком добавления или удаления права, и это позволяет изменять существующие права постепенно.
Права символических ссылок никогда не меняются: вместо этого chmod изменяет файл, на который указывает ссылка.

ПАРАМЕТРЫ
-R, --recursive
-v, --verbose

""" + FOOTER,
    "date": """НАЗВАНИЕ
date - вывод и установка системной даты и времени

ОПИСАНИЕ
Команда date выводит текущую дату и время в заданном формате. Если формат не указан, выводятся день недели, месяц, число, время, часовой пояс и год.
Строка формата может содержать любые сочетания обозначений для года, месяца, дня, часов и минут, а также обычный текст.
Пользователь с правами администратора может с помощью этой команды установить системные часы.
Если передать команде строку с описанием другого момента времени, она переведёт его в нужный формат, что очень удобно при вычислении дат в сценариях оболочки.
По умолчанию используется местный часовой пояс, но можно попросить команду показать время по Гринвичу.

ПАРАМЕТРЫ
-d, --date=STRING
-u, --utc

""" + FOOTER,
}

_NAVIGATION = "Home | Products | Microcontrollers | Support | Community | Contact\nSearch this site\nLog in  Register"
_TEMPLATE = (
    "Our development boards ship with a free integrated development environment and a set of ready-made examples.\n"
    "All devices are available in industrial and extended temperature ranges, and samples can be ordered online.\n"
    "Subscribe to our newsletter to hear about new product launches, application notes and training events."
)
_SITE_FOOTER = "Terms of use | Privacy policy | Cookie settings\n© 2024 Example Semiconductors. All rights reserved."


def _page(title: str, specs: list[str], body: str) -> str:
    return "\n".join([_NAVIGATION, title, *specs, body, _TEMPLATE, _SITE_FOOTER])


TEMPLATED_ENGLISH = {
    "m0-overview": _page(
        "Cortex-M0+ family overview",
        ["Core: Arm Cortex-M0+ at 48 MHz", "Flash: 32 to 256 KB", "SRAM: 4 to 32 KB", "Package: QFN32, LQFP48"],
        "The entry-level family is designed for battery-powered sensors that spend most of their life asleep. "
        "Its low-power timer keeps running in the deepest sleep mode and wakes the core when a measurement is due, "
        "so a coin cell can last for years. The analog front end includes a twelve-bit converter with a hardware "
        "averaging unit, which saves the processor from waking up for every single sample. A simple two-wire debug "
        "port is enough to program and inspect the chip during development.",
    ),
    "m7-overview": _page(
        "Cortex-M7 family overview",
        ["Core: Arm Cortex-M7 at 600 MHz", "Flash: 2 to 8 MB", "SRAM: 1 MB tightly coupled", "Package: BGA196, LQFP144"],
        "The high-performance family targets motor control, audio processing and graphical user interfaces. "
        "A double-precision floating-point unit and a large cache let it run signal processing code that used to "
        "need a dedicated processor. Its display controller can drive a parallel panel directly, and the graphics "
        "accelerator blends layers without help from the core. Two Ethernet ports with time stamping make it a good "
        "choice for industrial networks where devices must agree on the time to a microsecond.",
    ),
    "video-formats": "\n".join([
        _NAVIGATION, "Supported video formats",
        "H.264: up to 1080p60", "H.265: up to 4K30", "VP9: decode only",
        "The media engine decodes the common streaming formats in hardware and leaves the processor free for the "
        "application. Each stream passes through a scaler that can resize it to the panel without visible artefacts, "
        "and a colour converter handles the different conventions of broadcast and computer video. When several "
        "streams are shown at once, the engine shares its time between them and keeps each one in step with its audio.",
        _TEMPLATE, _SITE_FOOTER,
    ]),
    "audio-formats": "\n".join([
        _NAVIGATION, "Supported audio formats",
        "AAC: stereo and 5.1", "Opus: all bit rates", "FLAC: up to 24-bit 192 kHz",
        "The audio subsystem decodes compressed music and speech with a small signal processor of its own, so playback "
        "continues while the main processor sleeps. A sample-rate converter lets any source play on any output, and "
        "an equaliser with ten bands can be tuned for the loudspeaker of each product. Echo cancellation and noise "
        "suppression make the same hardware useful for hands-free calls and voice assistants.",
        _TEMPLATE, _SITE_FOOTER,
    ]),
}
